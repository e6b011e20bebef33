"""RunOptions: everything a Phase 2 run is told, from the CLI or the library."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.launch.defaults import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S

DEFAULT_METRIC = "cv_score_mean"


@dataclass
class RunOptions:
    strategy: str = "runner"
    tasks_budget: int | None = None
    jobs: int | None = None  # None: auto
    timeout_s: float = DEFAULT_TIMEOUT_S
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    out: Path = Path("phase2-out")
    resume: bool = False
    retry_failed: bool = False
    max_evals: int | None = None
    metric: str = DEFAULT_METRIC
    min_gpu_memory: float | None = None  # None: taken from the template's --min-gpu-memory
    parent_tf: str = "none"  # reproduce a field condition in the launching parents
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    live: bool | None = None  # progress bar; None: when stderr is a terminal
    executor: str = "local"  # "local" | "ray"
    ray_address: str | None = None  # None with executor "ray": start a cluster here
    cpus_per_eval: float = 1.0  # Ray resources each evaluation requests
    gpus_per_eval: float = 0.0
    deadline_s: float | None = None  # for the whole grid, from its start
    plan_cache: bool = True  # read and write per-child peaks in the user's cache dir
