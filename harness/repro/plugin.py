"""pytest plugin (entry point `pytest11`): use the harness from any repository.

Options: --repro-command / --work-pattern / --done-pattern (the command under
test), --require-gpu (no GPU = the run fails, it does not skip).
Fixtures: `repro_command` (the Command under test) and `launch` (method,
condition -> outcomes). Every test is swept afterwards: a process or pids cgroup
that a test's launches left behind fails that test, by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.host import cgroup, nvml
from harness.host.proctree import marked, terminate
from harness.launch.command import Command, parse, reference
from harness.launch.condition import Condition
from harness.verdict.outcome import Outcome

REPRO_COMMAND_DESC = ("the training command under test (default: the reference workload with "
                      "the field's flags), e.g. \"python src/main.py --mode search ...\"")
WORK_PATTERN_DESC = "regex on a foreign command's output that means device work started"
DONE_PATTERN_DESC = "regex on a foreign command's output that means the run completed"
REQUIRE_GPU_DESC = "fail the run (do not skip) when no GPU is visible through NVML"
GPU_MARKER = "gpu: needs a GPU visible through NVML; run with --require-gpu on GPU hosts"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phase2-harness")
    group.addoption("--repro-command", default=None, help=REPRO_COMMAND_DESC)
    group.addoption("--work-pattern", default=None, help=WORK_PATTERN_DESC)
    group.addoption("--done-pattern", default=None, help=DONE_PATTERN_DESC)
    group.addoption("--require-gpu", action="store_true", default=False, help=REQUIRE_GPU_DESC)


def gpu_status() -> tuple[int, str]:
    """(number of GPUs NVML sees, why none) for the GPU gate."""
    with nvml.Nvml.open() as handle:
        if not handle.available:
            return 0, handle.reason
        return len(handle.gpus()), ""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", GPU_MARKER)
    # Each xdist worker answers for its own launches; a pytest run nested inside a test
    # (pytester) keeps the outer test's owner, so the outer sweep sees its leftovers.
    if hasattr(config, "workerinput"):
        os.environ[cgroup.OWNER_ENV] = str(os.getpid())
    else:
        os.environ.setdefault(cgroup.OWNER_ENV, str(os.getpid()))
    if config.getoption("--require-gpu"):
        count, why = gpu_status()
        if count == 0:
            raise pytest.UsageError(f"--require-gpu: no GPU is visible to this machine ({why})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--require-gpu"):
        return
    gpu_items = [i for i in items if i.get_closest_marker("gpu")]
    if gpu_items and gpu_status()[0] == 0:
        skip = pytest.mark.skip(reason="no GPU visible; pass --require-gpu to make this fail")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repro_command(pytestconfig: pytest.Config) -> Command:
    text = pytestconfig.getoption("--repro-command")
    work = pytestconfig.getoption("--work-pattern")
    done = pytestconfig.getoption("--done-pattern")
    if not text:
        return reference()
    return parse(text, work_pattern=work, done_pattern=done)


@pytest.fixture
def launch(repro_command: Command, tmp_path: Path) -> Callable[..., list[Outcome]]:
    """launch(method, condition=None, command=None, timeout_s=..., stall_timeout_s=...)
    -> one Outcome per sibling; logs under the test's tmp_path."""
    from harness.repro.cell import run_cell

    counter = iter(range(1_000_000))

    def run(method: str = "subprocess-pipes", condition: Condition | None = None,
            command: Command | None = None, timeout_s: float = 600.0,
            stall_timeout_s: float = 60.0) -> list[Outcome]:
        log_dir = tmp_path / f"launch-{next(counter)}-{method}"
        return run_cell(command or repro_command, condition or Condition(), method, log_dir,
                        timeout_s, stall_timeout_s)

    return run


def leftovers() -> tuple[list[str], list[Path]]:
    """Processes and cgroups that launches owned by this session left behind."""
    owner = cgroup.owner_pid()
    procs = marked(f"{owner}:", prefix=True)
    return [f"pid {p.pid} {' '.join(p.cmdline())[:100]}" for p in procs], \
        cgroup.leftovers(owner=owner)


def sweep() -> tuple[list[str], list[Path]]:
    """Find leftovers, then clean them up so one leak does not fail every later test."""
    procs, groups = leftovers()
    if procs:
        owner = cgroup.owner_pid()
        terminate(marked(f"{owner}:", prefix=True), grace_s=0.5)
    for path in groups:
        cgroup.destroy(path)
    return procs, groups


@pytest.fixture(autouse=True)
def _harness_sweep(request: pytest.FixtureRequest):
    """Fails the test that left a launched process or a pids cgroup behind."""
    yield
    procs, groups = sweep()
    if procs or groups:
        pytest.fail(f"{request.node.nodeid} left behind: processes {procs}, "
                    f"cgroups {[str(g) for g in groups]}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _harness_session_sweep():
    """A last check when the session ends (a leak from a fixture or a crashed test)."""
    yield
    procs, groups = sweep()
    if procs or groups:
        pytest.fail(f"the session left behind: processes {procs}, "
                    f"cgroups {[str(g) for g in groups]}", pytrace=False)
