"""The executor contract: the same scheduling scenarios through the local executor and
the Ray executor, with the same policy and the same assertions.

Children are the fake child (real processes, real pids cgroups); Ray is a stand-in
with the calls the Ray executor makes (remote/wait/get/cancel), running each Ray
task in a thread of this process, with a non-force cancel raising KeyboardInterrupt
in the task as Ray's does.
"""

from __future__ import annotations

import ctypes
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.phase2.executors import load, names
from harness.phase2.executors.base import Executor
from harness.phase2.executors.local import LocalExecutor
from harness.phase2.executors.ray.cluster import Cluster, Node
from harness.phase2.executors.ray.executor import RayExecutor
from harness.phase2.grid import Evaluation
from harness.phase2.need.estimate import Need, need_from_peak
from harness.phase2.options import RunOptions
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.loop import Hooks, Queue, schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task

from .conftest import fake

SEEDED_PEAK = 12  # a peak measured earlier: the need starts at need_from_peak(12)
SEEDED_NEED = need_from_peak(SEEDED_PEAK)


class _Ref:
    def __init__(self, fn, args) -> None:
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:  # a cancelled task ends here
            self.error = exc


class _Remote:
    def __init__(self, fn) -> None:
        self.fn = fn

    def options(self, **_resources) -> _Remote:
        return self

    def remote(self, *args) -> _Ref:
        return _Ref(self.fn, args)


class FakeRay:
    """One node with room for every request: tasks start at once, in threads."""

    class exceptions:  # named like Ray's module
        class RayError(Exception):
            pass

    def remote(self, fn) -> _Remote:
        return _Remote(fn)

    def wait(self, refs, num_returns=1, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            done = [r for r in refs if not r.thread.is_alive()]
            if len(done) >= num_returns or time.monotonic() >= deadline:
                return done[:max(num_returns, len(done))], [r for r in refs if r not in done]
            time.sleep(0.02)

    def get(self, ref):
        if ref.error is not None:
            raise self.exceptions.RayError(f"task cancelled: {ref.error!r}")
        return ref.result

    def cancel(self, ref, force=False) -> None:
        """Ray's non-force cancel interrupts the running task with KeyboardInterrupt."""
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ref.thread.ident),
                                                   ctypes.py_object(KeyboardInterrupt))


@contextmanager
def local_executor(opts: RunOptions, need: Need, log: DecisionLog):
    with LocalExecutor.open(opts, [], need, log) as executor:
        yield executor


@contextmanager
def ray_executor(opts: RunOptions, need: Need, log: DecisionLog):
    cluster = Cluster(None, [Node("fake-node", 60, 4.0, 0.0)])
    yield RayExecutor(cluster, opts, need, log, ray=FakeRay())


EXECUTORS = [pytest.param(local_executor, id="local"), pytest.param(ray_executor, id="ray")]


def _tasks(*commands) -> list[Task]:
    return [Task(Evaluation(i, {"i": i}), cmd) for i, cmd in enumerate(commands)]


def _run(open_executor, tmp_path: Path, tasks: list[Task], stall_s: float = 30.0,
         poll_hook=None, deadline_s: float | None = None
         ) -> tuple[RetryPolicy, dict[str, list], str | None, Executor]:
    opts = RunOptions(out=tmp_path / "out", tasks_budget=100, jobs=2, timeout_s=60.0,
                      stall_timeout_s=stall_s)
    if open_executor is ray_executor:
        opts.jobs, opts.tasks_budget = None, None  # what RayExecutor.check() demands
    policy, need = RetryPolicy(backoff_s=0.2), Need()
    policy.log.note(need.seed(SEEDED_PEAK, "this test"))
    finished: dict[str, list] = {}

    def finish(attempt) -> None:
        finished[attempt.task.evaluation.key] = [attempt.outcome.verdict, attempt.node]

    with open_executor(opts, need, policy.log) as executor:
        if poll_hook:
            poll_hook(executor)
        interrupted = schedule(executor, Queue(tasks), lambda a: policy.settle(a, need),
                               Hooks(finished=finish), deadline_s=deadline_s)
        return policy, finished, interrupted, executor


@pytest.mark.parametrize("open_executor", EXECUTORS)
def test_exhaustion_grows_the_need_and_runs_again(open_executor, tmp_path):
    marker = tmp_path / "first-attempt-done"
    tasks = _tasks(fake("thread-fail-once", str(marker)), fake("ok"))
    policy, finished, interrupted, executor = _run(open_executor, tmp_path, tasks)
    assert interrupted is None and executor.running == 0
    assert tasks[0].verdicts == ["thread_exhaustion", "ok"] and tasks[0].attempts == 2
    assert tasks[1].verdicts == ["ok"] and tasks[1].attempts == 1
    assert executor.need.value > SEEDED_NEED  # the exhaustion showed the need was too low
    assert any("thread_exhaustion on attempt 1" in d and "retry" in d
               for d in policy.log.decisions), policy.log.decisions
    assert {v for v, _ in finished.values()} == {"ok"} and len(finished) == 2
    assert (tmp_path / "out" / "evals" / tasks[0].evaluation.key / "attempt-2").is_dir()


@pytest.mark.parametrize("open_executor", EXECUTORS)
def test_a_hang_is_final(open_executor, tmp_path):
    tasks = _tasks(fake("sleep", "120"))
    _, finished, _, executor = _run(open_executor, tmp_path, tasks, stall_s=2.0)
    assert tasks[0].verdicts == ["hang"] and tasks[0].attempts == 1
    assert [v for v, _ in finished.values()] == ["hang"]
    assert executor.need.value == SEEDED_NEED  # nothing learnt, nothing retried


@pytest.mark.parametrize("open_executor", EXECUTORS)
def test_an_interrupt_stops_everything_and_is_recorded(open_executor, tmp_path):
    tasks = _tasks(fake("sleep", "120"), fake("sleep", "120"))

    def interrupt_after_start(executor: Executor) -> None:
        polls = {"n": 0}
        real_poll = executor.poll

        def poll(timeout_s: float):
            polls["n"] += 1
            if polls["n"] == 8:  # both children are running by now
                raise KeyboardInterrupt("SIGTERM")
            return real_poll(timeout_s)

        executor.poll = poll

    _, finished, interrupted, executor = _run(open_executor, tmp_path, tasks,
                                              poll_hook=interrupt_after_start)
    assert interrupted == "SIGTERM"
    assert finished == {} and executor.running == 0  # not finished: --resume runs them
    assert all(t.attempts == 1 for t in tasks)
    # The autouse sweep of the harness's pytest plugin fails this test if a child or
    # a pids cgroup is left behind.


@pytest.mark.parametrize("open_executor", EXECUTORS)
def test_the_deadline_stops_what_runs_and_leaves_the_queue(open_executor, tmp_path):
    tasks = _tasks(fake("ok"), fake("sleep", "120"), fake("sleep", "120"), fake("ok"))
    if open_executor is ray_executor:  # the fake node runs what it is given at once
        tasks = tasks[:3]
    _, finished, interrupted, executor = _run(open_executor, tmp_path, tasks, deadline_s=4.0)
    assert interrupted and interrupted.startswith("deadline of 4 s reached"), interrupted
    assert "stopped" in interrupted and "left for --resume" in interrupted
    assert executor.running == 0
    assert [v for v, _ in finished.values()] == ["ok"]  # only what finished in time
    assert all(t.attempts <= 1 for t in tasks)


def test_library_ctrl_c_names_sigint(tmp_path):
    tasks = _tasks(fake("sleep", "120"))

    def ctrl_c(executor: Executor) -> None:
        real_poll = executor.poll

        def poll(timeout_s: float):
            if executor.running:
                raise KeyboardInterrupt  # what Python's own SIGINT handler raises
            return real_poll(timeout_s)

        executor.poll = poll

    _, _, interrupted, _ = _run(local_executor, tmp_path, tasks, poll_hook=ctrl_c)
    assert interrupted == "SIGINT (KeyboardInterrupt)"


@pytest.mark.parametrize(("threads", "in_flight"), [(60, 1), (100, 2), (200, 4)])
def test_ray_before_a_need_starts_what_the_nodes_hold_at_the_prior(threads, in_flight,
                                                                     tmp_path):
    need = Need()
    need.assume(34, "this test")  # need_from_peak(34) = 43 tasks
    opts = RunOptions(out=tmp_path / "out")
    executor = RayExecutor(Cluster(None, [Node("fake-node", threads, 4.0, 0.0)]), opts,
                           need, DecisionLog(), ray=FakeRay())
    tasks = _tasks(*(fake("ok") for _ in range(4)))
    started = executor.start(tasks)
    assert len(started) == in_flight  # the rest wait for the need, not in Ray's queue
    assert executor.start(tasks[len(started):]) == []  # nothing more while they run
    while executor.running:
        executor.poll(0.5)


def test_executors_are_found_by_module_name():
    assert names() == ["local", "ray"]
    assert load("local") is LocalExecutor and load("ray") is RayExecutor
