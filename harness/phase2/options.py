"""RunOptions: everything a Phase 2 run is told, from the CLI or the library."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.host.limits import Limits
from harness.launch.condition import Condition
from harness.launch.defaults import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S
from harness.supervise.logcap import LOG_CAP_BYTES

DEFAULT_METRIC = "cv_score_mean"
TICK_S = 0.25  # the runner samples less often than the repro harness: it needs peaks of
# long-lived TF pools, not of every transient thread, and its children need the CPU


@dataclass
class RunOptions:
    strategy: str = "runner"
    tasks_budget: int | None = None
    jobs: int | None = None  # None: auto
    timeout_s: float = DEFAULT_TIMEOUT_S
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    log_cap_bytes: int = LOG_CAP_BYTES  # each evaluation's stdout/stderr on disk, at most
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

    def condition(self, name: str, tasks: int | None = None) -> Condition:
        """The launch condition every child of this run gets: the parent's state and the
        environment it was told, under a task budget of `tasks` (validated on making)."""
        return Condition(name=name, limits=Limits(tasks=tasks), parent_tf=self.parent_tf,
                         env=self.env, unset=self.unset)
