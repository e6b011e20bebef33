"""Each verdict rule, end to end with tiny fake children (no TensorFlow)."""

from __future__ import annotations

import pytest

from harness.host.limits import Limits
from harness.launch.condition import Condition
from harness.launch.methods import CATALOGUE

ALL = list(CATALOGUE)


@pytest.mark.parametrize("method", ALL)
def test_ok_through_every_method(run_fake, method):
    [o] = run_fake("ok", method=method)
    assert o.verdict == "ok", o.evidence
    assert o.work_started and o.completed
    assert o.exit_code == 0 and o.signal is None
    assert o.orphans == 0
    with open(f"{o.log_dir}/stdout.log") as out:
        assert "training done" in out.read()


@pytest.mark.parametrize("method", ALL)
def test_nonzero_exit_is_error(run_fake, method):
    [o] = run_fake("exit", "3", method=method)
    assert o.verdict == "error" and o.exit_code == 3, o.evidence


@pytest.mark.parametrize("method", ["subprocess-pipes", "os-system", "shell", "mp-fork"])
def test_signal_is_crash_and_shell_status_is_decoded(run_fake, method):
    [o] = run_fake("signal", "SIGSEGV", method=method)
    assert o.verdict == "crash" and o.signal == 11, o.evidence
    if method in ("os-system", "shell"):
        assert o.exit_code == 139 and any("128+SIGSEGV" in e for e in o.evidence)


@pytest.mark.parametrize("method", ["subprocess-pipes", "os-system", "mp-spawn"])
def test_pthread_create_failure_is_thread_exhaustion(run_fake, method):
    [o] = run_fake("thread-fail", method=method)
    assert o.verdict == "thread_exhaustion", o.evidence
    assert o.signal == 6
    assert any("pthread_create" in e for e in o.evidence)


def test_real_task_budget_refuses_threads(run_fake):
    [o] = run_fake("threads", "50", condition=Condition(limits=Limits(tasks=10)))
    assert o.verdict == "thread_exhaustion", o.evidence
    assert o.exhausted == "pids cgroup (pids.max)"
    assert o.budget["backend"].startswith("pids-cgroup")
    assert any("can't start new thread" in e for e in o.evidence)


@pytest.mark.parametrize("mode", ["sleep", "deadlock"])
def test_blocked_child_is_hang_with_stacks(run_fake, mode):
    [o] = run_fake(mode, "120")
    assert o.verdict == "hang", o.evidence
    assert o.stack_dump
    with open(o.stack_dump) as stacks:
        assert stacks.read().strip()
    assert o.orphans == 0


@pytest.mark.parametrize("mode", ["sleep", "deadlock"])
def test_blocked_hang_says_idle(run_fake, mode):
    [o] = run_fake(mode, "120")
    assert any("and idle" in e and "blocked" in e for e in o.evidence), o.evidence


def test_busy_child_without_progress_is_hang(run_fake):
    """Burning CPU is not progress: a spin (or a collective waiting on a dead peer)
    stalls like a blocked child, with the CPU it burned and its stacks."""
    [o] = run_fake("spin", timeout_s=60.0, stall_timeout_s=3.0)
    assert o.verdict == "hang", o.evidence
    busy = next(e for e in o.evidence if e.startswith("busy without progress"))
    burned = float(busy.split("burned ")[1].split(" CPU-s")[0])
    assert burned >= 1.0, busy  # ~3 s of one core, sampled
    assert any("raise --stall-timeout" in e for e in o.evidence)
    with open(o.stack_dump) as stacks:
        text = stacks.read()
    assert "py-spy dump" in text and "child.py" in text  # where the Python code spins
    assert "kernel view of" in text
    assert o.orphans == 0


def test_child_making_progress_at_the_limit_is_timeout(run_fake):
    [o] = run_fake("progress", timeout_s=4.0, stall_timeout_s=3.0)
    assert o.verdict == "timeout", o.evidence


def test_silent_child_at_the_limit_before_the_stall_timeout_is_timeout(run_fake):
    [o] = run_fake("spin", timeout_s=4.0, stall_timeout_s=30.0)
    assert o.verdict == "timeout", o.evidence


def test_undrained_pipe_is_pipe_deadlock(run_fake):
    [o] = run_fake("flood", str(1 << 20), method="popen-wait")
    assert o.verdict == "pipe_deadlock", o.evidence
    assert any("blocked in write" in e for e in o.evidence)


@pytest.mark.parametrize("method", ["subprocess-pipes", "os-system", "env-isolated"])
def test_drained_or_file_output_does_not_deadlock(run_fake, method):
    [o] = run_fake("flood", str(1 << 20), method=method)
    assert o.verdict == "ok", o.evidence
    assert (o.log_dir and __import__("os").path.getsize(f"{o.log_dir}/stdout.log")
            == (1 << 20))


@pytest.mark.parametrize("method", ["mp-spawn", "mp-fork"])
def test_mp_methods_refuse_non_python_commands(run_fake, method):
    from harness.launch.command import Command

    [o] = run_fake("", method=method, command=Command(("/bin/true",)))
    assert o.verdict == "launch_error"
    assert "not a Python command" in o.evidence[0]


def test_foreign_command_patterns(run_fake):
    from harness.launch.command import Command

    cmd = Command(("/bin/sh", "-c", "echo 'GPU step 1'; echo 'FINISHED run'"),
                  work_pattern=r"GPU step \d+", done_pattern="FINISHED")
    [o] = run_fake("", command=cmd)
    assert o.verdict == "ok" and o.work_started and o.completed, o.evidence
    missing = Command(("/bin/sh", "-c", "echo hello"), done_pattern="FINISHED")
    [o] = run_fake("", command=missing)
    assert o.verdict == "error" and o.completed is False


def test_siblings_get_separate_logs_and_outcomes(run_fake):
    outcomes = run_fake("ok", condition=Condition(siblings=3))
    assert [o.sibling for o in outcomes] == [0, 1, 2]
    assert len({o.log_dir for o in outcomes}) == 3
    assert all(o.verdict == "ok" for o in outcomes)


FORK_BOMBLET = ("/bin/sh", "-c", "for i in $(seq 40); do sleep 2 & done; wait")


@pytest.mark.xdist_group("rlimit-nproc")  # RLIMIT_NPROC counts per uid: never in parallel
def test_rlimit_nproc_budget_for_a_non_root_child(run_fake):
    """RLIMIT_NPROC really enforced: as root, --run-as makes the child non-root; as a
    non-root user the auto backend is RLIMIT_NPROC already."""
    import os

    from harness.launch.command import Command

    run_as = "nobody" if os.getuid() == 0 else None
    cmd = Command(FORK_BOMBLET)
    [o] = run_fake("", command=cmd,
                   condition=Condition(limits=Limits(tasks=10), run_as=run_as))
    assert o.verdict == "thread_exhaustion", o.evidence
    assert o.budget["backend"] == "rlimit-nproc" and o.budget["nproc_base"] is not None
    assert o.exhausted == "RLIMIT_NPROC (ulimit -u)"
    [free] = run_fake("", command=cmd, condition=Condition(run_as=run_as))
    assert free.verdict == "ok", free.evidence


def test_rlimit_nproc_is_refused_for_a_root_child(run_fake):
    import os

    from harness.errors import HostError

    condition = Condition(limits=Limits(tasks=10), budget_backend="nproc")
    if os.getuid() == 0:
        with pytest.raises(HostError, match="not enforced for uid 0"):
            run_fake("ok", condition=condition)
    else:
        [o] = run_fake("ok", condition=condition)
        assert o.budget["backend"] == "rlimit-nproc"
