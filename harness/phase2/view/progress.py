"""What people see while Phase 2 runs: a rich progress bar on a terminal, plain lines
otherwise, and a summary table at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.phase2.view.wording import medians, some

if TYPE_CHECKING:
    from rich.progress import Progress
from harness.verdict.verdicts import Verdict, styled

LINES_IN_FULL = 50  # finished evaluations with a line each before lines are thinned


class Reporter:
    def __init__(self, total: int, skipped: int, console: Console | None = None,
                 live: bool | None = None, cpus: int | None = None,
                 jobs: int | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = sys.stderr.isatty() if live is None else live
        self.total, self.done = total, skipped
        self.cpus, self.jobs = cpus, jobs
        self._cpu_s = self._wall_s = 0.0  # sums over the evaluations finished in this run
        self._counted = 0
        self._next_line = 0.0  # past the first LINES_IN_FULL, at most a line a second
        self._progress: Progress | None = None
        if skipped:
            self.line(f"resume: {skipped} finished evaluation(s) taken from the ledger")

    def __enter__(self) -> Reporter:
        if self.live:  # imported here: rich.progress alone is 50 ms of every refusal
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(TextColumn("phase2"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"),
                                      console=self.console)
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total, completed=self.done)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def line(self, text: str) -> None:
        """A line of plain text: keys, params and verdicts are never read as markup."""
        self.console.print(text, highlight=False, markup=False)

    def attempt(self, key: str, attempt: int, verdict: str, note: str = "") -> None:
        if verdict != Verdict.OK:
            self.line(f"  {key} attempt {attempt}: {verdict}{note}")

    def eta(self) -> str:
        """Time left: what is left at the mean duration so far, `jobs` at a time; and the
        floor for it (their mean CPU seconds spread over every CPU)."""
        left = self.total - self.done
        if not (self._counted and left):
            return ""
        mean_s = self._wall_s / self._counted
        text = f"ETA ~{left * mean_s / max(1, self.jobs or 1):.0f}s"
        if self.cpus and self._cpu_s:
            floor = left * self._cpu_s / self._counted / self.cpus
            text += f" (floor {floor:.0f}s)"
        return text

    def finished(self, key: str, verdict: str, duration_s: float, score: float | None,
                 cpu_s: float = 0.0) -> None:
        self.done += 1
        self._counted += 1
        self._cpu_s += cpu_s
        self._wall_s += duration_s
        now = time.monotonic()
        if self._progress is None and verdict == Verdict.OK and \
                self._counted > LINES_IN_FULL and now < self._next_line and \
                self.done < self.total:
            return  # a grid of thousands: a line a second, every failure, and the last
        self._next_line = now + 1.0
        score_text = f" score={score:.4f}" if score is not None else ""
        eta = self.eta()
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done,
                                  description=f"last: {key} {verdict} {eta}")
        else:
            self.line(f"[{self.done}/{self.total}] {key} {verdict} {duration_s:.1f}s"
                      f"{score_text}{' · ' + eta if eta else ''}")


def print_summary(results: dict, console: Console | None = None) -> None:
    console = console or Console()
    summary = results["summary"]
    table = Table(title=f"Phase 2 ({summary['strategy']}): {summary['ok']}/{summary['total']} ok"
                        f" in {summary['wall_s']:.1f}s")
    for column in ("verdict", "evaluations", "attempts"):
        table.add_column(column)
    attempts: dict[str, int] = {}
    for e in results["evaluations"]:  # streamed: the grid may be large
        attempts[e["verdict"]] = attempts.get(e["verdict"], 0) + e["attempts"]
    for verdict, count in sorted(summary["by_verdict"].items()):
        table.add_row(styled(verdict), str(count), str(attempts.get(verdict, 0)))
    console.print(table)
    if summary.get("floor_s"):
        console.print(f"floor {summary['floor_s']:.1f}s ({summary['child_cpu_s']:.1f} CPU-s of "
                      f"children over {summary['cpus']} CPUs): this run took "
                      f"{summary['ratio_to_floor']:.2f}x it", highlight=False)
    if spent := time_spent(results["evaluations"]):
        console.print(f"median per evaluation: {spent}", highlight=False)
    best = summary.get("best")
    if best:
        console.print(f"best: {best['key']} {best['params']} "
                      f"{summary['metric']}={best['score']:.4f}", highlight=False, markup=False)
    if summary.get("missing"):
        console.print(f"[yellow]not finished: {escape(some(summary['missing']))} (run again with "
                      "--resume)[/]")


def time_spent(evaluations: Iterable[dict]) -> str:
    """The median of each part of the evaluations' time, in one line."""
    return ", ".join(f"{name} {value:.2f}s" for name, value in medians(evaluations))
