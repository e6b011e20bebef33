"""The per-child need of this command as a run learns it: the one place that says what is
known of it, where that came from and whether a child of this run has confirmed it.

The need comes from this command only: a probe run (`harness phase2 plan`), its
plan-cache entry or plan.json, or the first evaluation of a run, sampled once its device
work has started, times a safety margin; a completed child confirms it. Before any of
these, the prior is a default that errs large, never another command's peak.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN = 1.25  # over a whole run's sampled peak
EARLY_MARGIN = 1.5  # over the peak at work_started: TF adds threads later (tf.data, collectives)
NEED_BUMP = 1.25  # after a thread_exhaustion the estimate was too low


def need_from_peak(peak: int, margin: float = MARGIN) -> int:
    return int(peak * margin) + 1


@dataclass
class Need:
    """The per-child task need as a run learns it.

    A need from before this run (OUT/plan.json, the plan cache, a resumed ledger) or from
    a child of this run at work_started is used at once, but it is not confirmed: it may
    be stale, or the child may still grow. A child of this run that completes confirms
    it; from then on the peaks of completed children set it, until an exhaustion shows
    it was too low and it only grows. A child that died within its grant shows only a
    lower bound (`at_least`).
    """

    value: int | None = None
    completed_peak: int = 0
    bumped: bool = False
    confirmed: bool = False  # a child of this run completed: its whole peak is known
    at_least: int = 0  # shown by children that died within their grants

    def completed(self, peak: int) -> None:
        if peak <= 0:  # exited before a sample caught it: no measurement, nothing learnt
            return
        self.completed_peak = max(self.completed_peak, peak)
        self.confirmed = True
        if not self.bumped:
            self.value = max(need_from_peak(self.completed_peak), self.at_least)

    def measured(self, peak: int, margin: float) -> bool:
        """A first need from a child of this run that reached work_started; False where a
        need was already known (a completed child will confirm or correct it)."""
        if self.value is not None or peak <= 0:
            return False
        self.value = max(need_from_peak(peak, margin), self.at_least)
        return True

    def bump(self, base: int, cap: int | None = None) -> int:
        self.bumped = True
        grown = max(int(base * NEED_BUMP) + 1, self.at_least)
        self.value = grown if cap is None else min(cap, grown)
        return self.value

    def outgrown(self, shown: int) -> None:
        """A child died within its grant and showed it needs at least `shown`: an
        unconfirmed need is withdrawn (the next child is measured alone); a confirmed one
        grows to the bound."""
        self.at_least = max(self.at_least, shown)
        if not self.confirmed:
            self.value = None
        elif self.value is not None:
            self.value = max(self.value, shown)
