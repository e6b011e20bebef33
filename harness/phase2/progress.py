"""What people see while Phase 2 runs: a rich progress bar on a terminal, plain lines
otherwise, and a summary table at the end."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.verdict import styled


class Reporter:
    def __init__(self, total: int, skipped: int, console: Console | None = None,
                 live: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = sys.stderr.isatty() if live is None else live
        self.total, self.done = total, skipped
        self._progress: Progress | None = None
        if skipped:
            self.line(f"resume: {skipped} finished evaluation(s) taken from the ledger")

    def __enter__(self) -> Reporter:
        if self.live:
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
        self.console.print(text, highlight=False)

    def attempt(self, key: str, attempt: int, verdict: str, note: str = "") -> None:
        if verdict != "ok":
            self.line(f"  {key} attempt {attempt}: {verdict}{note}")

    def finished(self, key: str, verdict: str, duration_s: float, score: float | None) -> None:
        self.done += 1
        score_text = f" score={score:.4f}" if score is not None else ""
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done,
                                  description=f"last: {key} {verdict}")
        else:
            self.line(f"[{self.done}/{self.total}] {key} {verdict} {duration_s:.1f}s{score_text}")


def print_summary(results: dict, console: Console | None = None) -> None:
    console = console or Console()
    summary = results["summary"]
    table = Table(title=f"Phase 2 ({summary['strategy']}): {summary['ok']}/{summary['total']} ok"
                        f" in {summary['wall_s']:.1f}s")
    for column in ("verdict", "evaluations", "attempts"):
        table.add_column(column)
    for verdict, count in sorted(summary["by_verdict"].items()):
        attempts = sum(e["attempts"] for e in results["evaluations"] if e["verdict"] == verdict)
        table.add_row(styled(verdict), str(count), str(attempts))
    console.print(table)
    best = summary.get("best")
    if best:
        console.print(f"best: {best['key']} {best['params']} "
                      f"{summary['metric']}={best['score']:.4f}", highlight=False)
    if summary.get("missing"):
        console.print(f"[yellow]not finished: {summary['missing']} (run again with --resume)[/]")
