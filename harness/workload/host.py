"""What the child sees of its host: limits, pids cgroup, thread env vars, GPU memory.

Reported in the `start` event before TensorFlow loads, so even a child that
aborts during initialisation leaves the evidence of its limits behind.
"""

from __future__ import annotations

import os

from harness.host import cgroup, nvml, rlimit

THREAD_ENV = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "TF_GPU_THREAD_MODE",
    "TF_GPU_THREAD_COUNT",
    "CUDA_VISIBLE_DEVICES",
)
def limits() -> dict[str, list[int | None]]:
    """rlimit name -> [soft, hard], None for unlimited."""
    return {name: list(pair) for name, pair in rlimit.current().items()}


def pids_cgroup() -> dict | None:
    group = cgroup.cgroup_of()
    return None if group is None else {"path": str(group.path), "max": group.max,
                                       "current": group.current}


def thread_env() -> dict[str, str]:
    """The thread/device env vars that are set (an empty value is kept: it means something)."""
    return {k: os.environ[k] for k in THREAD_ENV if k in os.environ}


def gpu_memory_check(min_free_gib: float) -> dict:
    """Free memory of every GPU this process may use, against --min-gpu-memory."""
    with nvml.Nvml.open() as handle:
        if not handle.available:
            return {"checked": False, "reason": handle.reason}
        gpus = nvml.visible(handle.gpus(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    short = nvml.short_of_memory(gpus, min_free_gib)
    return {
        "checked": True,
        "free_gib": {g.index: round(g.memory_free / nvml.GIB, 2) for g in gpus},
        "short": [g.index for g in short],
    }
