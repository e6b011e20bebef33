from __future__ import annotations

import os
import pwd
import resource
import subprocess
import sys
import time

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import HostError
from harness.host import cgroup, limits

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)),
       st.sampled_from(["", "B", "iB"]), st.booleans())
def test_parse_size_units(number, unit, suffix, lower):
    text = f"{number}{unit}{suffix if unit else ''}"
    assert limits.parse_size(text.lower() if lower else text) == number * UNITS[unit]


@given(st.text(max_size=12))
def test_parse_size_rejects_or_is_positive(text):
    try:
        value = limits.parse_size(text)
    except ValueError as exc:
        assert repr(text) in str(exc) or text in str(exc)
    else:
        assert value > 0


@pytest.mark.parametrize("bad", ["abc", "-1", "10Q", "0", "", "1.2.3", "G", "5 XB"])
def test_parse_size_errors_name_the_value(bad):
    with pytest.raises(ValueError, match="bad size"):
        limits.parse_size(bad)


@given(st.integers())
def test_parse_count(n):
    if n > 0:
        assert limits.parse_count(str(n)) == n
    else:
        with pytest.raises(ValueError):
            limits.parse_count(str(n))


@pytest.mark.parametrize("bad", ["abc", "1.5", "", "0", "-3"])
def test_parse_count_errors(bad):
    with pytest.raises(ValueError, match=repr(bad).replace("\\", "\\\\")):
        limits.parse_count(bad, "task limit")


def _trampoline(*args: str, cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.host.limits", *args, "--", *cmd],
                          capture_output=True, text=True, check=False)


def test_trampoline_sets_rlimits_then_execs():
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))"
    done = _trampoline("--rlimit", "nofile=64", cmd=[sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(64, 64)"


def test_trampoline_reports_exec_failure():
    done = _trampoline(cmd=["/nonexistent/program"])
    assert done.returncode == 127
    assert done.stderr.startswith("harness-trampoline: cannot exec")


def test_trampoline_joins_cgroup():
    group = cgroup.create(None)
    try:
        done = _trampoline("--cgroup", str(group.path),
                           cmd=["/bin/cat", "/proc/self/cgroup"])
        assert done.returncode == 0, done.stderr
        assert group.path.name in done.stdout
    finally:
        group.remove()
    assert not group.path.exists()


def test_pdeathsig_kills_the_command_with_its_parent():
    parent_code = (
        "import subprocess, sys, os\n"
        "p = subprocess.Popen([sys.executable, '-m', 'harness.host.limits', '--pdeathsig', "
        "str(os.getpid()), '--', 'sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "import time; time.sleep(0.5); os._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", parent_code], capture_output=True, text=True,
                          check=True)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    assert not alive


def test_nproc_is_refused_for_a_root_child():
    with pytest.raises(HostError, match="not enforced for uid 0"):
        limits.open_budget(10, child_uid=0, backend="nproc")


def test_budget_picks_a_pids_cgroup_for_root():
    budget = limits.open_budget(25, child_uid=os.getuid(), backend="cgroup")
    try:
        assert budget.backend.startswith("pids-cgroup-v")
        assert budget.group.max == 25
    finally:
        budget.group.remove()


def test_no_budget_still_tracks_with_an_unlimited_cgroup():
    budget = limits.open_budget(None, child_uid=os.getuid())
    try:
        assert budget.backend == "none" and budget.limit is None
        assert budget.group is not None and budget.group.max is None
    finally:
        budget.group.remove()


def test_uid_tasks_counts_threads():
    assert limits.uid_tasks(os.getuid()) >= psutil.Process().num_threads()


def test_rlimit_names_match_resource():
    assert limits.RLIMITS["nproc"] == resource.RLIMIT_NPROC


def _dies_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_run_as_children_die_with_a_sigkilled_harness(tmp_path):
    """The death signal is set after the uid change (the kernel clears it on one), so a
    child running as nobody still dies when the harness is SIGKILLed."""
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness", "launch", "--method", "phase2", "--run-as", "nobody",
         "--log-dir", str(tmp_path / "logs"), "--", "sleep", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, child = time.monotonic() + 30, None
    while child is None and time.monotonic() < deadline:
        found = [p for p in psutil.Process(harness.pid).children(recursive=True)
                 if p.name() == "sleep"]
        child = found[0] if found else None
        time.sleep(0.05)
    assert child is not None and child.uids().real == pwd.getpwnam("nobody").pw_uid
    harness.kill()
    harness.wait()
    assert _dies_within(child.pid, 5), "the nobody child outlived its harness"
    # What the SIGKILLed harness could not remove, the next launch group reaps.
    assert [p for p in cgroup.reap_stale() if f"-{harness.pid}-" in p.name]
