"""The retry and per-child need policy every executor's attempts go through.

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

from harness.phase2.need.estimate import Need, need_from_peak
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.task import Attempt, Task
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict

MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0  # doubles per attempt


@dataclass
class RetryPolicy:
    retries: bool = True
    max_attempts: int = MAX_ATTEMPTS
    backoff_s: float = RETRY_BACKOFF_S
    cap: int | None = None  # the largest need an executor can grant (a cluster's largest node)
    need: Need = field(default_factory=Need)
    # Tasks a child is granted while no need is known yet (None: the first child is
    # measured alone), and where it comes from.
    prior: int | None = None
    prior_source: str = ""
    need_source: str = ""  # where need.value comes from, until a child confirms it
    log: DecisionLog = field(default_factory=lambda: DecisionLog())

    @property
    def decisions(self) -> list[str]:
        return [text for _, text in self.log]

    def note(self, decision: str) -> None:
        """Record a decision, once when the same one repeats (a wait across ticks)."""
        if self.log.last != decision:
            self.decide(decision)

    def decide(self, decision: str) -> None:
        """Record a decision and when it was taken (the run's report marks it)."""
        self.log.add(decision)

    def seed(self, peak: int | None, where: str) -> None:
        """Start from this command's peak measured before this run instead of measuring
        one child; unconfirmed until a child of this run completes. A peak that is not a
        positive count (a tampered or corrupt record) is no evidence: nothing is seeded."""
        if isinstance(peak, int) and peak > 0:
            self.need.value = need_from_peak(peak)
            self.need_source = f"a peak of {peak} measured earlier in {where}"
            self.note(f"per-child need {self.need.value} from a peak of {peak} threads "
                      f"measured earlier in {where}")

    def assume(self, peak: int, where: str) -> None:
        """A prior: children may start under hard grants of this need before one child of
        this command is measured."""
        self.prior, self.prior_source = need_from_peak(peak), where
        self.note(f"no peak measured for this command: children start under grants of "
                  f"{self.prior} tasks ({where}) until one is")

    def ask(self) -> int | None:
        """The tasks one more child is granted now; None while nothing is known: one
        child is measured alone first."""
        return self.need.value if self.need.value is not None else self.prior

    def basis(self) -> str:
        """What the grant ask() gives rests on."""
        if self.need.value is None:
            return self.prior_source
        if self.need.confirmed:
            return f"the peaks of completed children of this run: need {self.need.value}"
        return self.need_source

    def measured(self, peak: int, margin: float, where: str) -> None:
        """A first need from a peak seen while the run goes (e.g. at work_started)."""
        if self.need.measured(peak, margin):
            self.need_source = f"{peak} threads {where}, {margin}x"
            self.note(f"measured {peak} threads {where}: per-child need {self.need.value}")

    def settle(self, attempt: Attempt) -> bool:
        """Record the attempt's verdict and learn from it; True when it runs again."""
        task, outcome = attempt.task, attempt.outcome
        task.verdicts.append(outcome.verdict)
        if outcome.verdict == Verdict.OK:
            first = not self.need.confirmed
            self.need.completed(outcome.peak_threads)
            if first and self.need.confirmed:
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
            task.notes.append(attempt.at_most)
            return False
        if guess_death(attempt):
            self._guess_died(attempt)
            return True
        if not self._may_retry(task):
            return False
        base = max(self.need.value or 0, attempt.grant or 0, outcome.peak_threads) or 1
        self.need.bump(base, cap=self.cap)
        within = f" within its grant of {attempt.grant}" if attempt.grant else ""
        self._requeue(task, f"thread_exhaustion on attempt {task.attempts}{within}; retry, "
                            f"per-child need now {self.need.value}")
        return True

    def _guess_died(self, attempt: Attempt) -> None:
        """The runner's own mistake: no attempt spent, no back-off, the need it showed."""
        task, shown = attempt.task, shown_need(attempt.outcome)
        task.guesses.append({"attempt": task.attempts, "grant": attempt.grant,
                             "guess": attempt.basis, "shown": shown})
        self.need.outgrown(shown)
        if self.need.value is None:
            self.prior = None  # the guess is withdrawn until a child is measured
        task.requeue(0.0)
        then = (f"per-child need {self.need.value}" if self.need.value is not None
                else "the next child is measured alone")
        self.decide(f"{task.evaluation.key}: died within a guessed grant of {attempt.grant} "
                    f"tasks ({attempt.basis}), showed a need of at least {shown}: not an "
                    f"attempt; retry at once where nothing is guessed for it; {then}")

    def _may_retry(self, task: Task) -> bool:
        return self.retries and task.spent < self.max_attempts

    def _requeue(self, task: Task, why: str) -> None:
        """Queue the task again after its back-off (doubling per attempt)."""
        task.requeue(self.backoff_s * 2 ** (task.spent - 1))
        self.note(f"{task.evaluation.key}: {why}")


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
