"""Strategies: how a Phase 2 run starts its evaluations.

- runner: the fix. phase2 launches (spawn-like exec, allow-listed env, thread caps,
  files, new session, die with the parent); admission control against the live
  budget headroom and GPU memory; retries with back-off for thread_exhaustion only.
- naive: the field's Phase 2. subprocess.run(capture_output=True), all at once.
- sequential: the "works in my terminal" baseline. One at a time, no caps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from harness.errors import InputError


class Admission(Enum):
    """When one more child starts."""

    BUDGET = "budget"  # while the live budget holds one more child's measured need
    ALL = "all"  # every task at once: the field's Phase 2
    ONE = "one"  # one at a time

    def most(self, jobs: int | None) -> int | None:
        """The most children at once (None: every task); jobs: --jobs, or auto's."""
        return {Admission.ALL: None, Admission.ONE: 1}.get(self, jobs)


@dataclass(frozen=True)
class Strategy:
    name: str
    method: str
    caps: bool
    admission: Admission
    retries: bool

    @property
    def measures(self) -> bool:
        """Whether children are admitted by this command's measured need: the need, the
        plan cache and the longest-first order are this strategy's."""
        return self.admission is Admission.BUDGET

    @property
    def all_at_once(self) -> bool:
        return self.admission is Admission.ALL


STRATEGIES = {s.name: s for s in (
    Strategy("runner", "phase2", caps=True, admission=Admission.BUDGET, retries=True),
    Strategy("naive", "subprocess-pipes", caps=False, admission=Admission.ALL, retries=False),
    Strategy("sequential", "subprocess-pipes", caps=False, admission=Admission.ONE,
             retries=False),
)}


def strategy_of(name: str) -> Strategy:
    """The strategy called name (InputError names the known ones)."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}: use {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
