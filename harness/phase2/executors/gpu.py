"""GPUs in admission: how many children --jobs auto starts on a GPU host, whether one more
fits every GPU's --min-gpu-memory, and the refusal of a run that would silently train on
CPU."""

from __future__ import annotations

from harness.errors import InputError
from harness.host import nvml
from harness.phase2.need.caps import cpus


class GpuGate:
    """Admit a child only while every GPU it will use keeps --min-gpu-memory free, counting
    children that were admitted but have not allocated yet."""

    def __init__(self, handle: nvml.Nvml, min_free_gib: float,
                 cuda_visible_devices: str | None = None) -> None:
        """cuda_visible_devices: the evaluations' own (not this process's)."""
        self.handle, self.min_free_gib = handle, min_free_gib
        self.cuda_visible_devices = cuda_visible_devices

    def allows(self, not_yet_on_gpu: int) -> tuple[bool, str]:
        if not self.handle.available or self.min_free_gib <= 0:
            return True, ""
        gpus = nvml.visible(self.handle.gpus(), self.cuda_visible_devices)
        reserve = not_yet_on_gpu * self.min_free_gib * nvml.GIB
        short = [g.index for g in gpus
                 if g.memory_free - reserve < self.min_free_gib * nvml.GIB]
        return (not short), (f"GPUs {short} would drop below {self.min_free_gib} GiB free"
                             if short else "")


def check_devices(handle: nvml.Nvml, env: dict[str, str]) -> None:
    """Refuse a run that would silently train on CPU on a GPU host (the report's
    "Solution C": CUDA_VISIBLE_DEVICES='' hides every GPU, without an error)."""
    if handle.available and env.get("CUDA_VISIBLE_DEVICES") == "":
        count = len(handle.gpus())
        raise InputError(
            f"CUDA_VISIBLE_DEVICES is set but empty: it hides all {count} GPUs of this host, "
            "so every evaluation would train on CPU without an error; unset it or name the "
            "GPUs (e.g. CUDA_VISIBLE_DEVICES=0,1)")


def auto_jobs(gpus: list[nvml.Gpu], min_free_gib: float) -> tuple[int, str]:
    """--jobs auto: what the host really has. GPU children: as many as the visible GPUs'
    free memory holds at --min-gpu-memory each (one per GPU without it); CPU children: one
    per schedulable CPU (their thread caps split the CPUs between them)."""
    if not gpus:
        return cpus(), f"{cpus()} schedulable CPUs"
    if min_free_gib <= 0:
        return len(gpus), f"{len(gpus)} visible GPUs, one child each"
    fits = sum(max(1, int(g.memory_free // (min_free_gib * nvml.GIB))) for g in gpus)
    return fits, (f"{len(gpus)} visible GPUs hold {fits} children at {min_free_gib:g} GiB "
                  "free each")


def min_gpu_memory(template: list[str], explicit: float | None) -> float:
    """--min-gpu-memory, else the template's own --min-gpu-memory, else 0."""
    if explicit is not None:
        return explicit
    if "--min-gpu-memory" in template:
        try:
            return float(template[template.index("--min-gpu-memory") + 1])
        except (IndexError, ValueError):
            return 0.0
    return 0.0
