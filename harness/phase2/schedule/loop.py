"""Scheduling: the one loop that drives any executor through the contract.

Offer the executor what may start (retries whose back-off is over first, then the next
tasks of the queue, no more than it has room for), collect the attempts that ended, let
the retry policy decide (final, or queued again after a back-off), until nothing is
queued or running. Ctrl-C / SIGTERM stops every running attempt and is recorded.

Each tick costs what the executor has room for, not what is queued: the queue is a
lazy iterator (a grid of 100,000 evaluations makes its tasks as they are offered) and
retries wait in a heap by the time their back-off ends.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from harness.phase2.options import TICK_S
from harness.phase2.schedule.task import Attempt, Task


class Queue:
    """What waits to start: tasks pulled from the grid but not started (the front, in
    order: retries that are due come first), the rest of the grid (lazily), and retries
    still waiting out their back-off (a heap by the time it ends)."""

    def __init__(self, tasks: Iterable[Task] = (), size: int | None = None) -> None:
        self._fresh: Iterator[Task] = iter(tasks)
        self._left = size if size is not None else len(tasks)  # type: ignore[arg-type]
        self._front: deque[Task] = deque()
        self._waiting: list[tuple[float, int, Task]] = []
        self._seq = itertools.count()
        # Open: tasks may still be added from other threads (a Pool's submissions), and
        # the loop runs on while nothing is queued, until closed or stopped.
        self._added: deque[Task] = deque()  # appends and pops are atomic in CPython
        self.open = False
        self.stop_reason: str | None = None

    def __len__(self) -> int:
        return len(self._front) + len(self._waiting) + self._left + len(self._added)

    def add(self, task: Task) -> None:
        """One more task, after what is queued (any thread)."""
        self._added.append(task)

    def offer(self, room: int, now: float) -> list[Task]:
        """Up to `room` tasks that may start now, in order; a task whose gate says no (its
        submitter cancelled it) is dropped here."""
        while self._waiting and self._waiting[0][0] <= now:
            self._front.appendleft(heapq.heappop(self._waiting)[2])
        while len(self._front) < room and (self._left or self._added):
            task = self._next()
            if task.gate is None or task.gate():
                self._front.append(task)
        return list(itertools.islice(self._front, max(0, room)))

    def _next(self) -> Task:
        if self._left:
            self._left -= 1
            return next(self._fresh)
        return self._added.popleft()

    def started(self, tasks: list[Task]) -> None:
        ids = {id(t) for t in tasks}
        self._front = deque(t for t in self._front if id(t) not in ids)

    def again(self, task: Task, now: float) -> None:
        """A task the policy runs again: first in line once its back-off is over."""
        if task.not_before <= now:
            self._front.appendleft(task)
        else:
            heapq.heappush(self._waiting, (task.not_before, next(self._seq), task))


class Runs(Protocol):
    """What the loop needs of an executor (executors/base.py is the whole contract)."""

    @property
    def running(self) -> int: ...

    def room(self) -> int: ...

    def start(self, ready: list[Task]) -> list[Task]: ...

    def poll(self, timeout_s: float) -> list[Attempt]: ...

    def stop(self, reason: str) -> None: ...


@dataclass(frozen=True)
class Hooks:
    """Who hears of attempts: every one that ended (attempted), and each task's final one
    (finished)."""

    finished: Callable[[Attempt], None]
    attempted: Callable[[Attempt], None] = lambda attempt: None
    tick: Callable[[], None] = lambda: None  # once a loop: a Pool reads live reports here


def schedule(executor: Runs, queue: Queue, settle: Callable[[Attempt], bool], hooks: Hooks,
             deadline_s: float | None = None) -> str | None:
    """Run every queued task to a final attempt, or until deadline_s from now; the
    interrupt reason, or None. settle(attempt) says whether an attempt runs again (the
    retry policy's). What is left (queued, or stopped at the deadline) is not finished:
    --resume runs it."""
    deadline = time.monotonic() + deadline_s if deadline_s else None
    try:
        while len(queue) or executor.running or queue.open:
            now = time.monotonic()
            if queue.stop_reason is not None:
                executor.stop(queue.stop_reason)
                return queue.stop_reason
            if deadline is not None and now >= deadline:
                reason = (f"deadline of {deadline_s:g} s reached: {executor.running} running "
                          f"stopped, {len(queue)} queued left for --resume")
                executor.stop(reason)
                return reason
            offered = queue.offer(executor.room(), now)
            if offered:
                queue.started(executor.start(offered))
            hooks.tick()
            for attempt in executor.poll(TICK_S):
                hooks.attempted(attempt)
                if settle(attempt):
                    queue.again(attempt.task, time.monotonic())
                else:
                    hooks.finished(attempt)
    except KeyboardInterrupt as exc:
        # The CLI's handler names the signal; Python's own SIGINT handler says nothing.
        reason = str(exc) or "SIGINT (KeyboardInterrupt)"
        executor.stop(reason)
        return reason
    return None
