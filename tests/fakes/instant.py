"""An executor whose attempts end the moment they start: the runner's own cost (policy,
ledger, summary, results.json, report) with no child at all. For tests of what the runner
computes and for `bench/scale.py`; the children it stands in for are tested elsewhere.

    runner.run(template, grid, opts, kind=instant(outcome_of))
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from harness.phase2.executors.base import Attempt, Executor, ExecutorFacts
from harness.phase2.schedule.task import Task
from harness.verdict.outcome import Outcome


def ok_scored(task: Task) -> dict:
    """Every attempt ok, with a score that repeats (ties) across the grid."""
    return {"verdict": "ok", "metrics": {"cv_score_mean": (task.evaluation.index % 97) / 97}}


def instant(outcome_of: Callable[[Task], dict] = ok_scored, slots: int = 2) -> type[Executor]:
    """An Executor class whose attempt of a task ends at once as outcome_of(task) says
    (the fields of an outcome record: verdict, metrics, duration_s, cpu_s, ...)."""

    class Instant(Executor):
        name, caps = "instant", {}

        def __init__(self, need, log) -> None:
            super().__init__(need, log)
            self._running: list[Task] = []

        @classmethod
        def check(cls, opts) -> None:
            pass

        @classmethod
        @contextmanager
        def open(cls, opts, template, need, log):
            yield cls(need, log)

        @property
        def running(self) -> int:
            return len(self._running)

        def room(self) -> int:
            return slots - len(self._running)

        def start(self, ready: list[Task]) -> list[Task]:
            started = ready[:self.room()]
            for task in started:
                task.attempts += 1
                task.began()
            self._running += started
            return started

        def poll(self, timeout_s: float) -> list[Attempt]:
            done, self._running = self._running, []
            return [Attempt(t, Outcome.from_record({
                "method": "instant", "condition": "test", "log_dir": "", "peak_threads": 5,
                "duration_s": 0.001, "cpu_s": 0.001, **outcome_of(t)}), "here")
                for t in done]

        def stop(self, reason: str) -> None:
            self._running = []

        def facts(self) -> ExecutorFacts:
            return ExecutorFacts(executor=self.name, cpus=2, jobs=slots, max_running=slots)

    return Instant
