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
    """The per-child task need of this command as a run learns it, and where it came from.

    A need from before this run (OUT/plan.json, the plan cache, a resumed ledger) or from
    a child of this run at work_started is used at once, but it is not confirmed: it may
    be stale, or the child may still grow. A child of this run that completes confirms
    it; from then on the peaks of completed children set it, until an exhaustion shows
    it was too low and it only grows. A child that died within its grant shows only a
    lower bound (`at_least`). Before any of these, children may start under a prior.

    Policies and executors ask it (ask, basis) and tell it what they saw; the methods
    that change it return the decision to log, or None.
    """

    value: int | None = None
    source: str = ""  # where value comes from, until a child confirms it
    confirmed: bool = False  # a child of this run completed: its whole peak is known
    prior: int | None = None  # granted while value is None (None: measure one alone)
    prior_source: str = ""
    cap: int | None = None  # the largest need an executor can grant (a cluster's largest node)
    completed_peak: int = 0
    bumped: bool = False
    at_least: int = 0  # shown by children that died within their grants

    def ask(self) -> int | None:
        """The tasks one more child is granted now; None while nothing is known: one
        child is measured alone first."""
        return self.value if self.value is not None else self.prior

    def basis(self) -> str:
        """What the grant ask() gives rests on."""
        if self.value is None:
            return self.prior_source
        if self.confirmed:
            return f"the peaks of completed children of this run: need {self.value}"
        return self.source

    def seed(self, peak: object, where: str) -> str | None:
        """Start from this command's peak measured before this run instead of measuring
        one child; unconfirmed until a child of this run completes. A peak that is not a
        positive count (a tampered or corrupt record) is no evidence: nothing is seeded."""
        if not isinstance(peak, int) or isinstance(peak, bool) or peak <= 0:
            return None
        self.value = need_from_peak(peak)
        self.source = f"a peak of {peak} measured earlier in {where}"
        return f"per-child need {self.value} from a peak of {peak} threads measured earlier " \
               f"in {where}"

    def assume(self, peak: int, where: str) -> str:
        """A prior: children may start under hard grants of this need before one child of
        this command is measured."""
        self.prior, self.prior_source = need_from_peak(peak), where
        return (f"no peak measured for this command: children start under grants of "
                f"{self.prior} tasks ({where}) until one is")

    def measured(self, peak: int, margin: float, where: str) -> str | None:
        """A first need from a child of this run that reached work_started; None where a
        need was already known (a completed child will confirm or correct it)."""
        if self.value is not None or peak <= 0:
            return None
        self.value = max(need_from_peak(peak, margin), self.at_least)
        self.source = f"{peak} threads {where}, {margin}x"
        return f"measured {peak} threads {where}: per-child need {self.value}"

    def completed(self, peak: int, node: str) -> str | None:
        """A child of this run completed with this peak; the decision when it is the first
        to confirm the need."""
        if peak <= 0:  # exited before a sample caught it: no measurement, nothing learnt
            return None
        first = not self.confirmed
        self.completed_peak = max(self.completed_peak, peak)
        self.confirmed = True
        if not self.bumped:
            self.value = max(need_from_peak(self.completed_peak), self.at_least)
        return f"measured {peak} threads on {node}: per-child need {self.value}" if first \
            else None

    def bump(self, base: int) -> int:
        """An exhaustion showed the need too low: it grows (to the cap at most)."""
        self.bumped = True
        grown = max(int(base * NEED_BUMP) + 1, self.at_least)
        self.value = grown if self.cap is None else min(self.cap, grown)
        return self.value

    def outgrown(self, shown: int) -> None:
        """A child died within its grant and showed it needs at least `shown`: an
        unconfirmed need is withdrawn, and so is the prior (the next child is measured
        alone); a confirmed one grows to the bound."""
        self.at_least = max(self.at_least, shown)
        if not self.confirmed:
            self.value = None
            self.prior = None
        elif self.value is not None:
            self.value = max(self.value, shown)
