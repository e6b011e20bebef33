"""What one child of this command is given: the host's CPUs, the thread caps that make
jobs children share them, and the prior peak of a thread-capped TF child before any child
of this command was measured."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """What every child of a run is made from: the command template and the thread caps
    its environment gets. A measured peak is evidence about this recipe only (plan.json,
    the plan cache): another command's, or the same under other caps, is not."""

    template: list[str]
    caps: dict[str, str]


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def thread_caps(host_cpus: int, jobs: int) -> dict[str, str]:
    """Explicit pool sizes so that `jobs` children share the CPUs instead of each sizing
    its pools for the whole host (TF's default: one thread per core per pool)."""
    intra = max(1, host_cpus // max(1, jobs))
    return {
        "TF_NUM_INTRAOP_THREADS": str(intra),
        "TF_NUM_INTEROP_THREADS": str(min(2, intra)),
        "OMP_NUM_THREADS": str(intra),
    }


DEFAULT_PEAK_BASE = 32  # threads a thread-capped TF child has besides its pools (measured:
# 19-22 in all on 2 cores); the prior over-asks rather than risk a retry


def default_peak(caps: dict[str, str]) -> int:
    """A prior peak for a TF child under these caps, before any child was measured."""
    intra = int(caps.get("TF_NUM_INTRAOP_THREADS") or cpus())
    inter = int(caps.get("TF_NUM_INTEROP_THREADS") or cpus())
    return DEFAULT_PEAK_BASE + intra + inter
