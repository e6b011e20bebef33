"""Repository-wide pytest setup: matrix options and the repro report.

The harness's own pytest plugin (options --repro-command/--require-gpu, the
`launch` fixture, the leftover sweep) is loaded through its `pytest11` entry
point, exactly as other repositories get it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
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


# -- the suite owns its state ------------------------------------------------------------
# Nothing a test runs may read or write the user's real home, cache or config: the harness
# persists its plan cache there (platformdirs: XDG_CACHE_HOME), and TensorFlow, Keras,
# matplotlib, Ray and Chromium write under HOME. The session points HOME at a sandbox
# before collection (so env dicts built at import see it); each test gets its own XDG
# dirs and plan cache; the session fails if anything under the real home changed.

SANDBOX_ENV = "HARNESS_TEST_HOME"  # set by the process that made the sandbox (xdist workers
# inherit it)
XDG_DIRS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
IGNORE_ENV = "HARNESS_HOME_CHECK_IGNORE"  # colon-separated paths other programs write
# into while the suite runs (a developer's own tools); CI sets none
_REAL = pytest.StashKey[tuple]()


def _toolchain_homes(home: Path) -> dict[str, str]:
    """Toolchains found through HOME (rustup's cargo/rustc, pyenv's shims) keep working:
    they are read, never written, by the tests that need them."""
    found = {"RUSTUP_HOME": home / ".rustup", "CARGO_HOME": home / ".cargo",
             "PYENV_ROOT": home / ".pyenv"}
    return {k: str(v) for k, v in found.items() if k not in os.environ and v.is_dir()}


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(SANDBOX_ENV):  # an xdist worker: its controller made the sandbox
        return
    real = Path.home().resolve()
    sandbox = Path(tempfile.mkdtemp(prefix="harness-test-home-"))
    os.environ.update(_toolchain_homes(real))
    os.environ.update({SANDBOX_ENV: str(sandbox), "HOME": str(sandbox),
                       "MPLCONFIGDIR": str(sandbox / "matplotlib")})  # its font cache once
    for name in XDG_DIRS:
        os.environ[name] = str(sandbox / name.lower())
    config.stash[_REAL] = (real, time.time(), sandbox)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _REAL in config.stash:
        shutil.rmtree(config.stash[_REAL][2], ignore_errors=True)


def _ignored(path: Path, ignore: list[Path]) -> bool:
    return "__pycache__" in path.parts or any(path.is_relative_to(i) for i in ignore)


def changed_under(home: Path, since: float, ignore: list[Path]) -> list[str]:
    """Directories under home whose entries changed since `since`: a file made, removed or
    renamed there (the harness's atomic JSON writes rename). The interpreter's bytecode
    caches and `ignore` do not count."""
    changed = []
    for root, dirs, _ in os.walk(home):
        here = Path(root)
        dirs[:] = [d for d in dirs if not _ignored(here / d, ignore)]
        try:
            if here.stat().st_mtime >= since:
                changed.append(root)
        except OSError:
            continue
    return changed


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REAL not in session.config.stash:
        return
    real, since, _ = session.config.stash[_REAL]
    # The checkout is the suite's own work area (reports/, .nox/), wherever it lies: a
    # clone under the home (~/phase2-harness, as on a fresh machine) is not the user's state.
    ignore = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
              session.config.rootpath.resolve(),
              Path(session.config.getoption("--repro-report")).resolve(),
              *(Path(p) for p in os.environ.get(IGNORE_ENV, "").split(":") if p)]
    changed = changed_under(real, since, ignore)
    if changed:
        session.config.get_terminal_writer().line(
            f"the suite wrote under the real home {real} (tests must use their tmp dir): "
            + ", ".join(changed[:10]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _own_state(tmp_path_factory, monkeypatch):
    """Each test starts with an empty plan cache and XDG dirs of its own: a peak cached by
    one test must not change another's admission."""
    from harness.phase2.plan_cache import CACHE_ENV

    mine = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(CACHE_ENV, str(mine / "plan-cache"))
    for name in XDG_DIRS:
        monkeypatch.setenv(name, str(mine / name.lower()))
