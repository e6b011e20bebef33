"""The executor contract: where the attempts of Phase 2 evaluations run.

In the spirit of torch elastic's PContext: schedule() (the runner's one loop)
calls start() with the tasks that may start, poll() for attempts that ended,
and stop() when interrupted; the executor owns its processes or cluster and
reports every attempt as an Attempt, whatever ran it. The retry decisions are the
shared RetryPolicy's, never an executor's; an executor asks the per-child need
(need/estimate.py) for grants and tells it what it measured.

Executors are found by name (executors/__init__.py): `--executor NAME` imports
harness.phase2.executors.NAME, whose `EXECUTOR` is a subclass of Executor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from harness.phase2.need.estimate import Need
from harness.phase2.options import RunOptions
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.task import Attempt, Task
from harness.supervise.files import LaunchFiles

__all__ = ["Attempt", "Executor", "ExecutorFacts"]
ROOM_UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class ExecutorFacts:
    """What the run's summary says about the executor that ran it."""

    executor: str
    cluster: dict | None = None  # Ray: the cluster's address and nodes
    cpus: int | None = None  # what the run's children could use at once
    jobs: int | None = None
    max_running: int | None = None
    thread_caps: dict[str, str] = field(default_factory=dict)
    budget: dict | None = None


class Executor(ABC):
    """Runs attempts; the runner talks only to this."""

    name: str
    caps: dict[str, str]  # thread caps every child gets (env)

    def __init__(self, need: Need, log: DecisionLog) -> None:
        self.need, self.log = need, log

    @classmethod
    @abstractmethod
    def check(cls, opts: RunOptions) -> None:
        """Refuse options this executor cannot honour (InputError), before anything
        is written or launched."""

    @classmethod
    @abstractmethod
    def open(cls, opts: RunOptions, template: list[str], need: Need, log: DecisionLog
             ) -> AbstractContextManager[Executor]:
        """Connect (a cluster) or set up (a launch group); closed when the run ends."""

    @property
    @abstractmethod
    def running(self) -> int:
        """Attempts started and not yet reported by poll()."""

    def room(self) -> int:
        """How many more attempts start() could take now: the most the scheduler offers
        it (a grid of 100,000 is not offered whole on every tick)."""
        return ROOM_UNBOUNDED

    @abstractmethod
    def start(self, ready: list[Task]) -> list[Task]:
        """Start what may start now, in order, from tasks ready to run; the ones started."""

    @abstractmethod
    def poll(self, timeout_s: float) -> list[Attempt]:
        """Wait up to timeout_s; the attempts that ended since the last poll."""

    @abstractmethod
    def stop(self, reason: str) -> None:
        """Stop every running attempt now; their files are kept, they are not reported."""

    def cancel(self, task: Task, reason: str) -> bool:
        """Stop one running attempt (its whole tree; its grant is released when it ends):
        it is still reported by poll(), as it ended. False where it is not running."""
        return False

    def events_of(self, task: Task) -> Path | None:
        """Where a running attempt's events are appended as they happen, to read its
        reports live; None where they come back only with the attempt."""
        return None

    def events_after(self, attempt: Attempt) -> Path:
        """Where an attempt that ended has all its events, at the offsets events_of()'s
        file had: read once, when poll() reports it."""
        return LaunchFiles(Path(attempt.outcome.log_dir or ".")).events

    @abstractmethod
    def facts(self) -> ExecutorFacts:
        """What the summary says about this executor."""
