"""Strategies: how a Phase 2 run starts its evaluations.

- runner: the fix. phase2 launches (spawn-like exec, allow-listed env, thread caps,
  files, new session, die with the parent); admission control against the live
  budget headroom and GPU memory; retries with back-off for thread_exhaustion only.
- naive: the field's Phase 2. subprocess.run(capture_output=True), all at once.
- sequential: the "works in my terminal" baseline. One at a time, no caps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    method: str
    caps: bool
    admission: str  # "budget" | "all" | "one"
    retries: bool


STRATEGIES = {s.name: s for s in (
    Strategy("runner", "phase2", caps=True, admission="budget", retries=True),
    Strategy("naive", "subprocess-pipes", caps=False, admission="all", retries=False),
    Strategy("sequential", "subprocess-pipes", caps=False, admission="one", retries=False),
)}
