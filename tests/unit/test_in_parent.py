"""The in-parent method (the incident's Solution B): the launching parent runs the
command itself, --calls times, and the outcome keeps what each call left behind."""

from __future__ import annotations

import sys

import pytest

from harness.errors import InputError
from harness.launch import spec as launch
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.verdict.verdicts import Verdict

from .conftest import fake


def _in_parent(tmp_path, command: Command, calls: int | None = 3, stall_s: float = 30.0,
               condition: Condition | None = None):
    spec = launch.LaunchSpec(command, "in-parent", condition or Condition(),
                             tmp_path / "in-parent", 120.0, stall_s, calls=calls)
    [outcome] = launch.run(spec)
    return outcome


def test_three_calls_in_one_process_each_recorded(tmp_path):
    outcome = _in_parent(tmp_path, fake("ok"))
    assert outcome.verdict == Verdict.OK and outcome.completed
    assert [c["call"] for c in outcome.calls] == [1, 2, 3]
    assert {c["verdict"] for c in outcome.calls} == {"ok"}
    assert all(c["rss_mb"] > 0 and c["threads"] >= 1 and c["fds"] >= 3 for c in outcome.calls)
    assert any("per call over 3 calls" in e for e in outcome.evidence), outcome.evidence


def test_a_call_that_exits_non_zero_is_an_error_and_the_calls_go_on(tmp_path):
    outcome = _in_parent(tmp_path, fake("exit", "3"))
    assert outcome.verdict == Verdict.ERROR and outcome.exit_code == 3
    assert [(c["verdict"], c["exit"]) for c in outcome.calls] == [("error", 3)] * 3


def test_a_call_that_raises_is_an_error_with_its_exception(tmp_path):
    outcome = _in_parent(tmp_path, fake("raise"), calls=2)
    assert outcome.verdict == Verdict.ERROR
    assert [c["verdict"] for c in outcome.calls] == ["error", "error"]
    assert "the fake child failed on purpose" in outcome.calls[0]["error"]
    assert any("call 1: error" in e for e in outcome.evidence), outcome.evidence


def test_a_thread_leaked_per_call_shows_in_threads(tmp_path):
    outcome = _in_parent(tmp_path, fake("leak-thread"), calls=4)
    assert outcome.verdict == Verdict.OK
    threads = [c["threads"] for c in outcome.calls]
    assert threads == list(range(threads[0], threads[0] + 4)), threads
    assert any("+1.0 threads" in e for e in outcome.evidence), outcome.evidence


def test_an_abort_ends_the_launch_with_the_calls_so_far(tmp_path):
    outcome = _in_parent(tmp_path, fake("abort-second", str(tmp_path / "marker")))
    assert outcome.verdict == Verdict.CRASH and outcome.signal == 6
    assert [c["call"] for c in outcome.calls] == [1]
    assert any("died in call 2" in e for e in outcome.evidence), outcome.evidence


def test_a_call_that_hangs_is_stopped_by_the_stall_rule(tmp_path):
    outcome = _in_parent(tmp_path, fake("sleep", "600"), stall_s=3.0)
    assert outcome.verdict == Verdict.HANG and outcome.calls == []


@pytest.mark.parametrize(("method", "calls", "command", "said"), [
    ("in-parent", 0, fake("ok"), "bad --calls 0"),
    ("in-parent", 1001, fake("ok"), "bad --calls 1001"),
    ("shell", 2, fake("ok"), "--calls is for in-parent"),
    ("in-parent", None, Command(("sh", "-c", "true")), "is not a Python command"),
])
def test_bad_calls_and_commands_are_refused_before_anything_starts(tmp_path, method, calls,
                                                                    command, said):
    spec = launch.LaunchSpec(command, method, Condition(), tmp_path / "refused", calls=calls)
    with pytest.raises(InputError, match=said):
        launch.run(spec)
    assert not (tmp_path / "refused").exists()


def test_the_reference_workload_three_times_in_one_process(tmp_path):
    from harness.launch.command import reference

    outcome = _in_parent(tmp_path, reference(), stall_s=120.0)
    assert outcome.verdict == Verdict.OK and outcome.work_started and outcome.completed
    assert [c["verdict"] for c in outcome.calls] == ["ok"] * 3
    assert outcome.calls[0]["rss_mb"] > 200  # TF stays loaded in the process
    assert outcome.metrics and outcome.metrics.get("cv_scores")
    assert sys.modules.get("tensorflow") is None  # the harness itself never loads it
