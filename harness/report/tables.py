"""Outcome tables on a terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import styled


def _flag(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def print_outcomes(outcomes: list[Outcome], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{outcomes[0].method} / {outcomes[0].condition}" if outcomes else "")
    for column in ("#", "verdict", "exit", "signal", "work", "done", "peak thr", "secs",
                   "orphans", "log dir"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(str(o.sibling), styled(o.verdict), str(o.exit_code), str(o.signal),
                      _flag(o.work_started), _flag(o.completed), str(o.peak_threads),
                      f"{o.duration_s:.1f}", str(o.orphans), o.log_dir)
    console.print(table)
    for o in outcomes:
        for line in o.evidence[:6]:
            console.print(f"  [dim]#{o.sibling}[/] {line}", markup=True, highlight=False)
