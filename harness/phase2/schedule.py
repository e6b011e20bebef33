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
             on_attempt: Callable[[Attempt], None] | None = None) -> str | None:
    """Run every task to a final attempt; the interrupt reason, or None."""
    queue = list(tasks)
    try:
        while queue or executor.running:
            now = time.monotonic()
            started = {id(t) for t in executor.start([t for t in queue if t.not_before <= now])}
            queue = [t for t in queue if id(t) not in started]
            for attempt in executor.poll(TICK_S):
                if on_attempt:
                    on_attempt(attempt)
                if policy.settle(attempt):
                    queue.append(attempt.task)
                else:
                    on_finish(attempt)
    except KeyboardInterrupt as exc:
        reason = str(exc) or "KeyboardInterrupt"
        executor.stop(reason)
        return reason
    return None
