"""NVML through nvidia-ml-py: which GPUs exist, their free memory and compute mode,
and which processes run compute work on them.

Everything takes the NVML module as a parameter so the logic is testable with
a fake module object on machines without a GPU. Without nvidia-ml-py or a
driver, `Nvml.open()` returns a handle whose `available` is False and whose
`reason` says why: callers report "unavailable", never "no GPU work".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

GIB = 1 << 30
DRIVER_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str
    memory_total: int
    memory_free: int
    compute_mode: str  # DEFAULT | EXCLUSIVE_THREAD | PROHIBITED | EXCLUSIVE_PROCESS


_COMPUTE_MODES = {0: "DEFAULT", 1: "EXCLUSIVE_THREAD", 2: "PROHIBITED", 3: "EXCLUSIVE_PROCESS"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An open NVML session, or the reason there is none."""

    def __init__(self, module: Any | None, reason: str = "") -> None:
        self._nvml = module
        self.reason = reason

    @property
    def available(self) -> bool:
        return self._nvml is not None

    @classmethod
    def open(cls, module: ModuleType | Any | None = None) -> Nvml:
        if module is None:
            if not any(os.path.exists(p) for p in DRIVER_MARKERS):  # skip a ~30 ms import
                return cls(None, "no NVIDIA driver on this host (no /proc/driver/nvidia)")
            try:
                import pynvml as module  # nvidia-ml-py
            except ImportError:
                return cls(None, "nvidia-ml-py is not installed")
        try:
            module.nvmlInit()
            count = module.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError subclasses: no driver, no device, ...
            return cls(None, f"NVML init failed: {exc}")
        if count == 0:
            module.nvmlShutdown()
            return cls(None, "NVML sees no GPU")
        return cls(module)

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handles(self) -> list[tuple[int, Any]]:
        nvml = self._nvml
        if nvml is None:
            return []
        return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(nvml.nvmlDeviceGetCount())]

    def gpus(self) -> list[Gpu]:
        nvml = self._nvml
        found = []
        for index, handle in self._handles():
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            mode = _COMPUTE_MODES.get(nvml.nvmlDeviceGetComputeMode(handle), "UNKNOWN")
            found.append(Gpu(index, _text(nvml.nvmlDeviceGetName(handle)),
                             _text(nvml.nvmlDeviceGetUUID(handle)),
                             int(memory.total), int(memory.free), mode))
        return found

    def compute_pids(self) -> dict[int, set[int]]:
        """GPU index -> pids running compute work there."""
        nvml = self._nvml
        return {
            index: {int(p.pid) for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)}
            for index, handle in self._handles()
        }

    def utilization(self) -> dict[int, int]:
        """GPU index -> SM utilisation percent over the driver's last sample period."""
        nvml = self._nvml
        return {index: int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                for index, handle in self._handles()}


def visible(gpus: list[Gpu], cuda_visible_devices: str | None) -> list[Gpu]:
    """The GPUs a CUDA process would see under CUDA_VISIBLE_DEVICES (None: unset).

    CUDA semantics: an empty value hides every GPU; entries are indices or UUID
    prefixes; the list stops at the first entry that matches nothing.
    """
    if cuda_visible_devices is None:
        return list(gpus)
    chosen: list[Gpu] = []
    for entry in (e.strip() for e in cuda_visible_devices.split(",")):
        match = None
        if entry.isdigit():
            match = next((g for g in gpus if g.index == int(entry)), None)
        elif entry:
            match = next((g for g in gpus if g.uuid.startswith(entry)), None)
        if match is None:
            break
        chosen.append(match)
    return chosen


def short_of_memory(gpus: list[Gpu], min_free_gib: float) -> list[Gpu]:
    """GPUs with less free memory than min_free_gib."""
    return [g for g in gpus if g.memory_free < min_free_gib * GIB]


@dataclass
class GpuWork:
    """What NVML saw of one launch: status is observed | not_observed | unavailable."""

    status: str
    reason: str = ""
    pids: list[int] = field(default_factory=list)
    max_utilization: int = 0
    samples: int = 0

    def record(self) -> dict:
        return asdict(self)


class GpuWorkProbe:
    """Samples NVML while a launch runs: did any process of its tree compute on a GPU?"""

    def __init__(self, nvml: Nvml) -> None:
        self._nvml = nvml
        self.result = GpuWork("not_observed" if nvml.available else "unavailable", nvml.reason)

    def sample(self, tree_pids: set[int]) -> None:
        if not self._nvml.available:
            return
        try:
            on_gpu = set().union(*self._nvml.compute_pids().values()) & tree_pids
            busy = max(self._nvml.utilization().values(), default=0)
        except Exception as exc:  # a driver error mid-run is evidence, not a crash
            self.result.reason = f"NVML query failed: {exc}"
            return
        self.result.samples += 1
        if on_gpu:
            self.result.status = "observed"
            self.result.pids = sorted(set(self.result.pids) | on_gpu)
            self.result.max_utilization = max(self.result.max_utilization, busy)
