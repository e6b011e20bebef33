"""Outcome tables on a terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
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
        # the verdict whole, whatever the width; a long log dir folds instead
        table.add_column(column, no_wrap=column == "verdict",
                         overflow="fold" if column == "log dir" else "ellipsis")
    for o in outcomes:
        table.add_row(str(o.sibling), styled(o.verdict), str(o.exit_code), str(o.signal),
                      _flag(o.work_started), _flag(o.completed), str(o.peak_threads),
                      f"{o.duration_s:.1f}", str(o.orphans), o.log_dir)
    console.print(table)
    for o in outcomes:
        for line in o.evidence[:6]:
            # a child wrote much of it: printed as text, never read as markup
            console.print(f"  [dim]#{o.sibling}[/] {escape(line)}", markup=True,
                          highlight=False)


def print_diagnoses(files: list, read: int, host: dict | None,
                    console: Console | None = None) -> None:
    """`harness diagnose`: a row per file with a finding (or every file with --all), its
    first matching lines, what the errno suggests, and this host's binding limit."""
    console = console or Console()
    found = [f for f in files if f.verdict]
    table = Table(title=f"{len(found)} of {read} file(s) say a thread or process could not "
                        "be created")
    for column in ("file", "verdict", "runtime", "line", "errno"):
        table.add_column(column, overflow="fold")
    for f in files:
        first = f.matches[0] if f.matches else {}
        verdict = styled(f.verdict) if f.verdict else (f"skipped: {f.skipped}" if f.skipped
                                                      else "[green]nothing found[/]")
        table.add_row(f.path, verdict, ", ".join(f.runtimes),
                      f"{first.get('line', '')}: {first.get('text', '')}" if first else "",
                      f.errno or "")
    console.print(table)
    for f in found:
        console.print(f"[bold]{f.path}[/]: {f.total} line(s); {f.errno}: {f.suggests}",
                      highlight=False)
        for m in f.matches[1:4]:
            console.print(f"  {m['line']}: {m['text'][:150]}", markup=False, highlight=False)
    if found and host:
        console.print(f"here: the binding limit is {host['source']} {host['limit']} "
                      f"({host['origin'] or host['detail']}), {host['in_use']} in use; "
                      f"fix: {host['fix']}", highlight=False)
