"""The pytest plugin, used the way another repository would use it (pytester)."""

from __future__ import annotations

import uuid

import pytest

from harness.host import cgroup

pytest_plugins = ["pytester"]

FOREIGN_TEST = '''
from harness.launch.condition import Condition
from harness.host.limits import Limits


def test_reference_workload_trains(launch):
    [outcome] = launch("env-isolated")
    assert outcome.verdict == "ok"
    assert outcome.work_started and outcome.completed
    assert outcome.metrics["cv_scores"]


def test_tight_budget_is_classified(launch):
    [outcome] = launch("subprocess-pipes", Condition(limits=Limits(tasks=12)))
    assert outcome.verdict == "thread_exhaustion"


def test_repro_command_option(repro_command):
    assert repro_command.is_reference
'''


def test_foreign_repository_uses_the_launch_fixture(pytester: pytest.Pytester):
    pytester.makepyfile(test_foreign=FOREIGN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_repro_command_and_patterns_reach_the_fixture(pytester: pytest.Pytester):
    pytester.makepyfile(test_cmd='''
def test_cmd(repro_command, launch):
    assert repro_command.argv == ("/bin/sh", "-c", "echo STEP 1; echo DONE")
    [o] = launch("shell")
    assert o.verdict == "ok" and o.work_started and o.completed
''')
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "--repro-command", "/bin/sh -c 'echo STEP 1; echo DONE'",
        "--work-pattern", "STEP", "--done-pattern", "DONE")
    result.assert_outcomes(passed=1)


def test_require_gpu_fails_without_a_gpu(pytester: pytest.Pytester):
    from harness.repro.plugin import gpu_status

    if gpu_status()[0]:
        pytest.skip("this host has a GPU: --require-gpu passes here (tests/gpu covers it)")
    pytester.makepyfile(test_gpu='''
import pytest

@pytest.mark.gpu
def test_needs_gpu():
    pass
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--require-gpu")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--require-gpu: no GPU is visible*"])


def test_sweep_names_the_leaking_test(pytester: pytest.Pytester):
    pytester.makepyfile(test_leak='''
import os, subprocess, sys

def test_leaks():
    env = {**os.environ, "HARNESS_LAUNCH": os.environ["HARNESS_OWNER"] + ":leak:0"}
    subprocess.Popen(["sleep", "300"], env=env)
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_leak.py::test_leaks left behind: processes*sleep*"])
    assert result.ret != 0


def test_a_foreign_harness_cgroup_beside_the_suite_is_left_alone(pytester: pytest.Pytester):
    """Another harness run's cgroup (owner 1, its creator alive) neither fails the sweep nor
    is touched by it."""
    foreign = cgroup.V1_ROOT / f"{cgroup.NAME_PREFIX}1-1-{uuid.uuid4().hex[:8]}"
    foreign.mkdir()
    try:
        pytester.makepyfile(test_quiet="def test_nothing():\n    pass\n")
        result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert foreign.is_dir()
    finally:
        foreign.rmdir()


def test_a_cgroup_the_test_itself_leaves_fails_it(pytester: pytest.Pytester):
    pytester.makepyfile(test_leak_group='''
from harness.host import cgroup

def test_leaks_a_cgroup():
    cgroup.create(None)
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_leaks_a_cgroup left behind*harness-*"])
    assert result.ret != 0
