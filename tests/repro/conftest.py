"""The matrix is generated from harness.repro.matrix: one test per (condition, method) cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.repro import matrix
from harness.repro.cell import run_cell
from harness.repro.plugin import gpu_status

CELL_TIMEOUT_S = 900
LAUNCH_TIMEOUT_S = 600.0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    config = metafunc.config
    reference = not config.getoption("--repro-command")
    params = [pytest.param((row, method), id=f"{row.name}-{method}",
                           marks=[pytest.mark.xdist_group(method)])
              for row, method in matrix.cells(config.getoption("--full"), reference)]
    metafunc.parametrize("cell", params)


class CellRunner:
    """Runs each cell once per worker; comparisons between rows reuse the results."""

    def __init__(self, command, log_root: Path, stall_timeout_s: float) -> None:
        self.command, self.log_root, self.stall = command, log_root, stall_timeout_s
        self.results: dict[tuple[str, str], list] = {}

    def run(self, row: matrix.Row, method: str) -> list:
        key = (row.name, method)
        if key not in self.results:
            self.results[key] = run_cell(
                self.command, row.condition, method, self.log_root / f"{row.name}-{method}",
                LAUNCH_TIMEOUT_S, self.stall)
        return self.results[key]


@pytest.fixture(scope="session")
def cells(repro_command, pytestconfig) -> CellRunner:
    root = Path(pytestconfig.getoption("--repro-report")) / "logs"
    return CellRunner(repro_command, root.resolve(),
                      pytestconfig.getoption("--repro-stall-timeout"))


@pytest.fixture(scope="session")
def gpu_host() -> bool:
    return gpu_status()[0] > 0
