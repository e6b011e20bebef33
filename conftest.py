"""Repository-wide pytest setup: matrix options and the repro report.

The harness's own pytest plugin (options --repro-command/--require-gpu, the
`launch` fixture, the leftover sweep) is loaded through its `pytest11` entry
point, exactly as other repositories get it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FULL_DESC = "run the whole reproduction matrix (every method in every row, extra rows)"
REPORT_DIR_DESC = "where the repro report goes (repro.json, repro.md; logs/ below it)"
STALL_DESC = ("seconds without output, events, log growth or writes before a repro launch "
              "counts as stalled (idle or busy)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phase2-harness repro")
    group.addoption("--full", action="store_true", default=False, help=FULL_DESC)
    group.addoption("--repro-report", default="reports", help=REPORT_DIR_DESC)
    group.addoption("--repro-stall-timeout", type=float, default=45.0, help=STALL_DESC)


_CELLS: list[dict] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect cell records (also from xdist workers: user_properties travel with reports)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "repro_cell":
            _CELLS.append(json.loads(value))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not _CELLS or hasattr(config, "workerinput"):
        return
    from rich.console import Console

    from harness.pages import write_repro
    from harness.report import matrix_legend, matrix_report, matrix_table, write_matrix

    report = matrix_report(_CELLS)
    out = Path(config.getoption("--repro-report"))
    json_path, md_path = write_matrix(report, out)
    html_path = write_repro(report, out)
    console = Console(file=terminalreporter._tw._file, width=100, force_terminal=None)
    console.print(matrix_table(report))
    console.print(matrix_legend(report), highlight=False)
    for line in report["findings"]:
        console.print(f"- {line}", highlight=False)
    console.print(f"report: {html_path} ({json_path}, {md_path})", highlight=False)


@pytest.fixture(autouse=True)
def _own_plan_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty Phase 2 plan cache of its own: a peak cached by one
    test must not change another's admission."""
    from harness.phase2.plan_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("plan-cache")))
