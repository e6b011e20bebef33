"""Repository-wide pytest setup: matrix options and the repro report.

The harness's own pytest plugin (options --repro-command/--require-gpu, the
`launch` fixture, the leftover sweep) is loaded through its `pytest11` entry
point, exactly as other repositories get it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

# The suite owns its state: HOME and XDG dirs in a sandbox, a plan cache per test, and a
# failure if the harness's places under the real home changed (tests/homeguard.py).
pytest_plugins = ["tests.homeguard"]

FULL_DESC = "run the whole reproduction matrix (every method in every row, extra rows)"
REPORT_DIR_DESC = "where the repro report goes (repro.json, repro.md; logs/ below it)"
STALL_DESC = ("seconds without output, events, log growth or writes before a repro launch "
              "counts as stalled (idle or busy)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phase2-harness repro")
    group.addoption("--full", action="store_true", default=False, help=FULL_DESC)
    group.addoption("--repro-report", default="reports", help=REPORT_DIR_DESC)
    group.addoption("--repro-stall-timeout", type=float, default=45.0, help=STALL_DESC)


_CELLS: list = []  # CellRecord
_STARTED = [time.monotonic()]  # the session's start: the matrix's wall time is from it


def pytest_sessionstart(session: pytest.Session) -> None:
    _STARTED[0] = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect cell records (also from xdist workers: user_properties travel with reports)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "repro_cell":
            from harness.repro.record import CellRecord

            _CELLS.append(CellRecord.from_json(value))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not _CELLS or hasattr(config, "workerinput"):
        return
    from rich.console import Console

    from harness.repro.pages import write_repro
    from harness.repro.report import (
        floor_line,
        matrix_legend,
        matrix_report,
        matrix_table,
        write_matrix,
    )

    report = matrix_report(_CELLS, wall_s=time.monotonic() - _STARTED[0])
    out = Path(config.getoption("--repro-report"))
    json_path, md_path = write_matrix(report, out)
    html_path = write_repro(report, out)
    console = Console(file=terminalreporter._tw._file, width=100, force_terminal=None)
    console.print(matrix_table(report))
    console.print(matrix_legend(report), highlight=False)
    for line in report["findings"]:
        console.print(f"- {line}", highlight=False)
    console.print(floor_line(report["floor"]), highlight=False)
    console.print(f"report: {html_path} ({json_path}, {md_path})", highlight=False)
