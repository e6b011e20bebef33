"""The retry and per-child need policy every executor's attempts go through.

thread_exhaustion is worth another attempt when the
child could be given more (it shared the budget with others, or got less than the
largest grant): then the per-child need grows and the task waits a back-off
before it is queued again. node_lost (its cluster node or worker died) is retried with
the same need. Every other verdict is final. Completed children
teach the need their peaks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.phase2 import planning as plans
from harness.phase2.task import Attempt, Task
from harness.verdict import Verdict

MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0  # doubles per attempt


@dataclass
class RetryPolicy:
    retries: bool = True
    max_attempts: int = MAX_ATTEMPTS
    backoff_s: float = RETRY_BACKOFF_S
    cap: int | None = None  # the largest need an executor can grant (a cluster's largest node)
    need: plans.Need = field(default_factory=plans.Need)
    # Tasks a child is granted while no need is measured yet (None: the first child is
    # measured alone), and where that number comes from.
    prior: int | None = None
    prior_source: str = ""
    decisions: list[str] = field(default_factory=list)
    decided_at: list[float] = field(default_factory=list)  # wall clock, one per decision

    def note(self, decision: str) -> None:
        """Record a decision, once when the same one repeats (a wait across ticks)."""
        if not self.decisions or self.decisions[-1] != decision:
            self.decide(decision)

    def decide(self, decision: str) -> None:
        """Record a decision and when it was taken (the run's report marks it)."""
        self.decisions.append(decision)
        self.decided_at.append(time.time())

    def seed(self, peak: int | None, where: str) -> None:
        """Start from a peak measured before this run instead of measuring one child."""
        if peak:
            self.need.value = plans.need_from_peak(peak)
            self.note(f"per-child need {self.need.value} from a peak of {peak} threads "
                      f"measured earlier in {where}")

    def assume(self, peak: int, where: str) -> None:
        """A prior: children may start under hard grants of this need before one child of
        this command is measured."""
        self.prior, self.prior_source = plans.need_from_peak(peak), where
        self.note(f"no peak measured for this command: children start under grants of "
                  f"{self.prior} tasks ({where}) until one is")

    def measured(self, peak: int, margin: float, where: str) -> None:
        """A first need from a peak seen while the run goes (e.g. at work_started)."""
        if self.need.value is None:
            self.need.value = plans.need_from_peak(peak, margin)
            self.note(f"measured {peak} threads {where}: per-child need {self.need.value}")

    def settle(self, attempt: Attempt) -> bool:
        """Record the attempt's verdict and learn from it; True when it runs again."""
        task, outcome = attempt.task, attempt.outcome
        task.verdicts.append(outcome.verdict)
        if outcome.verdict == Verdict.OK:
            first = self.need.value is None
            self.need.completed(outcome.peak_threads)
            if first and self.need.value is not None:
                self.note(f"measured {outcome.peak_threads} threads on {attempt.node}: "
                          f"per-child need {self.need.value}")
            return False
        if outcome.verdict == Verdict.NODE_LOST:  # not the evaluation's fault: same need
            if not self._may_retry(task):
                return False
            self._requeue(task, f"node_lost on attempt {task.attempts} ({attempt.node}); "
                                "retry on another node")
            return True
        if outcome.verdict != Verdict.THREAD_EXHAUSTION:
            return False
        if attempt.at_most:
            outcome.evidence.append(attempt.at_most)
            return False
        if not self._may_retry(task):
            return False
        base = max(self.need.value or 0, attempt.grant or 0, outcome.peak_threads) or 1
        self.need.bump(base, cap=self.cap)
        within = f" within its grant of {attempt.grant}" if attempt.grant else ""
        self._requeue(task, f"thread_exhaustion on attempt {task.attempts}{within}; retry, "
                            f"per-child need now {self.need.value}")
        return True

    def _may_retry(self, task: Task) -> bool:
        return self.retries and task.attempts < self.max_attempts

    def _requeue(self, task: Task, why: str) -> None:
        """Queue the task again after its back-off (doubling per attempt)."""
        task.requeue(self.backoff_s * 2 ** (task.attempts - 1))
        self.note(f"{task.evaluation.key}: {why}")
