"""The retry rules every executor's attempts go through, and what each attempt tells the
per-child need (need/estimate.py).

Every grant the runner gives a child is its guess of that child's need: a prior, a need
from before this run or from work_started, or the peak of other evaluations. A child
the kernel refused within its grant, where alone it could have had more, is the
runner's mistake, not the evaluation's (a "guess-death"): it is retried at once, first
in line and without back-off, without spending an attempt, and next runs where nothing
is guessed for it (alone on the budget, or on a node of its own); an unconfirmed need is
withdrawn. Other thread_exhaustion is worth another attempt when the child could be
given more: then the per-child need grows and the task waits a back-off. node_lost (its
cluster node or worker died) is retried with the same need. Every other verdict is
final. Completed children teach the need their peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.phase2.need.estimate import Need
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.task import Attempt, Guess, Task
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict

MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0  # doubles per attempt


@dataclass
class RetryPolicy:
    """Whether an ended attempt runs again, and when; it asks and tells the need it is
    handed, and writes its decisions to the log."""

    retries: bool = True
    max_attempts: int = MAX_ATTEMPTS
    backoff_s: float = RETRY_BACKOFF_S
    log: DecisionLog = field(default_factory=DecisionLog)

    def settle(self, attempt: Attempt, need: Need) -> bool:
        """Record the attempt's verdict and teach the need; True when it runs again."""
        task, outcome = attempt.task, attempt.outcome
        task.verdicts.append(outcome.verdict)
        if task.pruned is not None:  # a search stopped it: final, whatever it died of
            return False
        if outcome.verdict == Verdict.OK:
            self.log.note(need.completed(outcome.peak_threads, attempt.node))
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
            task.notes.append(attempt.at_most)
            return False
        if guess_death(attempt):
            self._guess_died(attempt, need)
            return True
        if not self._may_retry(task):
            return False
        need.bump(max(need.value or 0, attempt.grant or 0, outcome.peak_threads) or 1)
        within = f" within its grant of {attempt.grant}" if attempt.grant else ""
        self._requeue(task, f"thread_exhaustion on attempt {task.attempts}{within}; retry, "
                            f"per-child need now {need.value}")
        return True

    def _guess_died(self, attempt: Attempt, need: Need) -> None:
        """The runner's own mistake: no attempt spent, no back-off, the need it showed."""
        task, shown = attempt.task, shown_need(attempt.outcome)
        task.guesses.append(Guess(task.attempts, attempt.grant, attempt.basis, shown))
        need.outgrown(shown)
        task.requeue(0.0)
        then = (f"per-child need {need.value}" if need.value is not None
                else "the next child is measured alone")
        self.log.decide(f"{task.evaluation.key}: died within a guessed grant of "
                        f"{attempt.grant} tasks ({attempt.basis}), showed a need of at least "
                        f"{shown}: not an attempt; retry at once where nothing is guessed for "
                        f"it; {then}")

    def _may_retry(self, task: Task) -> bool:
        return self.retries and task.spent < self.max_attempts

    def _requeue(self, task: Task, why: str) -> None:
        """Queue the task again after its back-off (doubling per attempt)."""
        task.requeue(self.backoff_s * 2 ** (task.spent - 1))
        self.log.note(f"{task.evaluation.key}: {why}")


def guess_death(attempt: Attempt) -> bool:
    """The kernel refused the child within a grant the runner chose (its own cgroup's
    counter moved), where it could have been given more: the runner's mistake."""
    refused = (attempt.outcome.budget or {}).get("refused_this_launch") or 0
    return attempt.grant is not None and refused > 0 and not attempt.at_most


def shown_need(outcome: Outcome) -> int:
    """What a child that died within its grant showed it needs at least: the kernel's
    pids.peak of its launch cgroup where there is one, else the samples' peak, plus the
    creations it was refused."""
    budget = outcome.budget or {}
    peak = max(budget.get("launch_peak") or 0, outcome.peak_threads)
    return peak + (budget.get("refused_this_launch") or 0)
