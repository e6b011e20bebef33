"""Scheduling: the one loop that drives any executor through the contract.

Start what the executor admits, collect the attempts that ended, let the retry
policy decide (final, or queued again after a back-off), until nothing is queued
or running. Ctrl-C / SIGTERM stops every running attempt and is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.phase2.executor import Executor
from harness.phase2.policy import RetryPolicy
from harness.phase2.task import Attempt, Task

TICK_S = 0.25  # the runner samples less often than the repro harness: it needs peaks of
# long-lived TF pools, not of every transient thread, and its children need the CPU


def schedule(executor: Executor, policy: RetryPolicy, tasks: list[Task],
             on_finish: Callable[[Attempt], None],
             on_attempt: Callable[[Attempt], None] | None = None,
             deadline_s: float | None = None) -> str | None:
    """Run every task to a final attempt, or until deadline_s from now; the interrupt
    reason, or None. What is left (queued, or stopped at the deadline) is not finished:
    --resume runs it."""
    queue = list(tasks)
    deadline = time.monotonic() + deadline_s if deadline_s else None
    try:
        while queue or executor.running:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                reason = (f"deadline of {deadline_s:g} s reached: {executor.running} running "
                          f"stopped, {len(queue)} queued left for --resume")
                executor.stop(reason)
                return reason
            started = {id(t) for t in executor.start([t for t in queue if t.not_before <= now])}
            queue = [t for t in queue if id(t) not in started]
            for attempt in executor.poll(TICK_S):
                if on_attempt:
                    on_attempt(attempt)
                if policy.settle(attempt):  # first in line: it started before the rest
                    queue.insert(0, attempt.task)
                else:
                    on_finish(attempt)
    except KeyboardInterrupt as exc:
        # The CLI's handler names the signal; Python's own SIGINT handler says nothing.
        reason = str(exc) or "SIGINT (KeyboardInterrupt)"
        executor.stop(reason)
        return reason
    return None
