"""NVML through nvidia-ml-py: which GPUs exist, their free memory and compute mode,
and which processes run compute work on them.

Everything takes the NVML module as a parameter so the logic is testable with
a fake module object on machines without a GPU. Without nvidia-ml-py or a
driver, `Nvml.open()` returns a handle whose `available` is False and whose
`reason` says why: callers report "unknown", never "no GPU work". MIG instances
are devices of their own (uuid MIG-...), with their own memory; per-device
queries that a device does not support (utilisation on MIG) answer None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    mig_of: int | None = None  # a MIG instance: the index of its GPU

    @property
    def memory_used(self) -> int:
        return self.memory_total - self.memory_free


_COMPUTE_MODES = {0: "DEFAULT", 1: "EXCLUSIVE_THREAD", 2: "PROHIBITED", 3: "EXCLUSIVE_PROCESS"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An open NVML session, or the reason there is none."""

    def __init__(self, module: Any | None, reason: str = "") -> None:
        self._nvml = module
        self.reason = reason
        self._by_uuid: dict[str, Any] = {}

    @property
    def available(self) -> bool:
        return self._nvml is not None

    @classmethod
    def open(cls, module: ModuleType | Any | None = None) -> Nvml:
        if module is None:
            if not any(os.path.exists(p) for p in DRIVER_MARKERS):  # skip a ~30 ms import
                return cls(None, "no NVIDIA driver on this host (no /proc/driver/nvidia)")
            try:
                import pynvml  # nvidia-ml-py
            except ImportError:
                return cls(None, "nvidia-ml-py is not installed")
            module = pynvml
        try:
            module.nvmlInit()
            count = module.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError subclasses: no driver, no device, ...
            return cls(None, f"NVML init failed: {exc}")
        if count == 0:
            module.nvmlShutdown()
            return cls(None, "NVML sees no GPU")
        return cls(module)

    def _module(self) -> Any:
        """The NVML module of an open session. Callers reach here only through a device
        that an open session listed; a closed one says so rather than fail on None."""
        nvml = self._nvml
        if nvml is None:
            raise RuntimeError("NVML is not open")
        return nvml

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

    def _mig_handles(self, handle: Any) -> list[Any]:
        """The MIG instances of a GPU in MIG mode ([] otherwise, or where unsupported)."""
        nvml = self._module()
        try:
            if nvml.nvmlDeviceGetMigMode(handle)[0] != 1:
                return []
            count = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except Exception:  # NotSupported on GPUs without MIG, or an older driver
            return []
        found = []
        for i in range(count):
            try:
                found.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i))
            except Exception:  # an empty slot
                continue
        return found

    def _gpu(self, index: int, handle: Any, mig_of: int | None = None) -> Gpu:
        nvml = self._module()
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        try:
            mode = _COMPUTE_MODES.get(nvml.nvmlDeviceGetComputeMode(handle), "UNKNOWN")
        except Exception:  # MIG instances have no compute mode of their own
            mode = "UNKNOWN"
        gpu = Gpu(index, _text(nvml.nvmlDeviceGetName(handle)),
                  _text(nvml.nvmlDeviceGetUUID(handle)), int(memory.total), int(memory.free),
                  mode, mig_of)
        self._by_uuid[gpu.uuid] = handle
        return gpu

    def gpus(self) -> list[Gpu]:
        """Every device: whole GPUs, and the MIG instances of GPUs in MIG mode."""
        found = []
        for index, handle in self._handles():
            found.append(self._gpu(index, handle))
            found += [self._gpu(index, mig, mig_of=index) for mig in self._mig_handles(handle)]
        return found

    def _handle(self, gpu: Gpu) -> Any:
        if gpu.uuid not in self._by_uuid:
            self.gpus()
        return self._by_uuid[gpu.uuid]

    def processes(self, gpu: Gpu) -> dict[int, int]:
        """pid -> bytes used, for compute and graphics processes on this device. Inside a
        container these are the host's PIDs."""
        nvml, handle = self._module(), self._handle(gpu)
        found: dict[int, int] = {}
        for query in (nvml.nvmlDeviceGetComputeRunningProcesses,
                      getattr(nvml, "nvmlDeviceGetGraphicsRunningProcesses", None)):
            try:
                listed = query(handle) if query else []
            except Exception:  # graphics lists are NotSupported on many compute GPUs
                continue
            for proc in listed:
                found[int(proc.pid)] = int(getattr(proc, "usedGpuMemory", 0) or 0)
        return found

    def memory_used(self, gpu: Gpu) -> int:
        return int(self._module().nvmlDeviceGetMemoryInfo(self._handle(gpu)).used)

    def utilization(self, gpu: Gpu) -> int | None:
        """SM utilisation percent over the driver's last sample period; None where the
        device does not report it (MIG instances)."""
        try:
            return int(self._module().nvmlDeviceGetUtilizationRates(self._handle(gpu)).gpu)
        except Exception as exc:
            if "Not Supported" in str(exc) or "NotSupported" in type(exc).__name__:
                return None
            raise


def visible(gpus: list[Gpu], cuda_visible_devices: str | None) -> list[Gpu]:
    """The GPUs a CUDA process would see under CUDA_VISIBLE_DEVICES (None: unset).

    CUDA semantics: an empty value hides every GPU; entries are indices or UUID
    prefixes (GPU-..., MIG-...); the list stops at the first entry that matches nothing.
    """
    if cuda_visible_devices is None:  # a GPU in MIG mode is used through its instances
        split = {g.mig_of for g in gpus if g.mig_of is not None}
        return [g for g in gpus if g.mig_of is not None or g.index not in split]
    chosen: list[Gpu] = []
    for entry in (e.strip() for e in cuda_visible_devices.split(",")):
        match = None
        if entry.isdigit():
            match = next((g for g in gpus if g.mig_of is None and g.index == int(entry)), None)
        elif entry:
            match = next((g for g in gpus if g.uuid.startswith(entry)), None)
        if match is None:
            break
        chosen.append(match)
    return chosen


def short_of_memory(gpus: list[Gpu], min_free_gib: float) -> list[Gpu]:
    """GPUs with less free memory than min_free_gib."""
    return [g for g in gpus if g.memory_free < min_free_gib * GIB]
