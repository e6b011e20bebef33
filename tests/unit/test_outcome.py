"""classify() rule by rule, from synthetic evidence (no processes)."""

from __future__ import annotations

import pytest

from harness.supervise.files import LaunchFiles
from harness.supervise.observation import Observation
from harness.verdict.classify import classify, exhaustion_cause, exit_and_signal
from harness.verdict.probes import Observed


@pytest.fixture
def obs(tmp_path):
    files = LaunchFiles(tmp_path)
    files.stdout.write_text("")
    files.stderr.write_text("")
    return Observation(0, files)


def verdict(obs, result, seen=None, **kw):
    args = {"budget": {"backend": "none"}, "limits": {}, "events_max_delta": 0,
            "gpu_expected": False, **kw}
    found = classify(obs, result, seen or Observed(True, True), **args)
    return found.verdict, found.exit_code, found.signal, found.exhausted, found.evidence


def test_ok(obs):
    assert verdict(obs, {"returncode": 0})[0] == "ok"


def test_missing_parent_result_is_error(obs):
    v, *_, evidence = verdict(obs, None)
    assert v == "error" and "died without reporting" in evidence[0]


def test_launch_error_from_method(obs):
    assert verdict(obs, {"launch_error": "not Python"})[0] == "launch_error"


def test_shell_not_found_is_launch_error(obs):
    obs.files.stderr.write_text("sh: 1: frobnicate: not found\n")
    assert verdict(obs, {"returncode": 127, "via_shell": True})[0] == "launch_error"


@pytest.mark.parametrize(("result", "expected"), [
    ({"returncode": -6}, (None, 6)),
    ({"returncode": 134, "via_shell": True}, (134, 6)),
    ({"returncode": 134}, (134, None)),
    ({"returncode": 3}, (3, None)),
])
def test_exit_and_signal(result, expected):
    assert exit_and_signal(result)[:2] == expected


def test_pipe_block_wins_over_hang(obs):
    obs.stalled = True
    obs.stall_evidence = ["pid 1 blocked in write(fd=1) on pipe:[2]: 65536/65536 bytes"]
    assert verdict(obs, {"returncode": -15})[0] == "pipe_deadlock"


@pytest.mark.parametrize("line", [
    "F0000 env.cc:84] Check failed: ret == 0 (11 vs. 0)Thread tf_ creation via "
    "pthread_create() failed.",
    "LLVM ERROR: pthread_create failed: Resource temporarily unavailable",
    "RuntimeError: can't start new thread",
    "OpenBLAS blas_thread_init: pthread_create failed for thread 3 of 8",
    "cannot allocate memory for thread-local data: ABORT",
])
def test_thread_exhaustion_patterns(obs, line):
    obs.files.stderr.write_text(f"noise\n{line}\nmore noise\n")
    v, _, _, cause, evidence = verdict(obs, {"returncode": -6})
    assert v == "thread_exhaustion" and line[:100] in " ".join(evidence)
    assert cause.startswith("unknown")


def test_thread_pattern_without_failure_is_ok(obs):
    obs.files.stderr.write_text("warning: pthread_create failed once, retried\n")
    assert verdict(obs, {"returncode": 0})[0] == "ok"


def test_pids_events_alone_mark_exhaustion(obs):
    v, *_, cause, _ = verdict(obs, {"returncode": 1}, events_max_delta=3)
    assert v == "thread_exhaustion" and cause == "pids cgroup (pids.max)"


def test_exhaustion_cause_order():
    limits = {"address_space": 3 << 30, "stack": 64 << 20}
    for left_mib in (45, 77):  # what the address-space row measured: 3027 and 2995 MiB
        near = (3 << 30) - (left_mib << 20)  # less than a 64 MiB stack + a 128 MiB arena
        assert exhaustion_cause({}, limits, 0, near).startswith("address space")
    assert exhaustion_cause({}, limits, 0, (3 << 30) - (400 << 20)).startswith("unknown")
    assert exhaustion_cause({}, limits, 0, 1 << 30).startswith("unknown")  # far below
    assert exhaustion_cause({}, limits, 0).startswith("unknown")  # nothing sampled
    assert exhaustion_cause({"backend": "rlimit-nproc"}, {}, 0).startswith("RLIMIT_NPROC")
    assert exhaustion_cause({"backend": "rlimit-nproc"}, {}, 2).startswith("pids cgroup")


def test_stall_is_hang_and_names_the_stacks(obs):
    obs.stalled, obs.stack_dump = True, "/x/stacks.txt"
    v, *_, evidence = verdict(obs, {"returncode": -15})
    assert v == "hang" and "stacks: /x/stacks.txt" in evidence


def test_timeout(obs):
    obs.timed_out = True
    assert verdict(obs, {"returncode": -15})[0] == "timeout"


def test_interrupted_is_error(obs):
    obs.interrupted = "SIGTERM"
    v, *_, evidence = verdict(obs, {"returncode": -15})
    assert v == "error" and "interrupted: SIGTERM" in evidence


def test_signal_is_crash(obs):
    assert verdict(obs, {"returncode": -11})[0] == "crash"


def test_exit_zero_without_completion_is_error(obs):
    assert verdict(obs, {"returncode": 0}, Observed(True, False))[0] == "error"


def test_unknown_completion_is_inferred_and_said(obs):
    v, *_, evidence = verdict(obs, {"returncode": 0}, Observed(None, None))
    assert v == "ok" and "inferred from exit 0" in evidence[0]


def test_gpu_host_without_gpu_work(obs):
    obs.gpu_work = {"status": "not_observed"}
    seen = Observed(True, True, devices={"kind": "cpu"})
    assert verdict(obs, {"returncode": 0}, seen, gpu_expected=True)[0] == "no_gpu_work"
    obs.gpu_work = {"status": "observed"}
    seen = Observed(True, True, devices={"kind": "gpu"})
    assert verdict(obs, {"returncode": 0}, seen, gpu_expected=True)[0] == "ok"


def test_cpu_host_never_reports_no_gpu_work(obs):
    obs.gpu_work = {"status": "unavailable"}
    assert verdict(obs, {"returncode": 0}, gpu_expected=False)[0] == "ok"
