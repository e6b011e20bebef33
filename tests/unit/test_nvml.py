"""NVML logic against a fake NVML module object (the real thing is in tests/gpu)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.host import nvml

GIB = nvml.GIB


class FakeNVMLError(Exception):
    pass


class NVMLError_NotSupported(FakeNVMLError):
    def __str__(self) -> str:
        return "Not Supported"


class FakeNvml:
    """The slice of pynvml the harness calls. A device is a dict: name, uuid, free (bytes),
    and optionally mode, pids (compute), graphics, util ("unsupported" on MIG), mig (a list
    of MIG instance dicts)."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus, init_error=None):
        self._gpus, self._init_error = gpus, init_error
        self.shutdown = False

    def nvmlInit(self):
        if self._init_error:
            raise FakeNVMLError(self._init_error)

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetCount(self):
        return len(self._gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self._gpus[i]

    def nvmlDeviceGetName(self, h):
        return h["name"].encode()

    def nvmlDeviceGetUUID(self, h):
        return h["uuid"]

    def nvmlDeviceGetMemoryInfo(self, h):
        total = h.get("total", 80 * GIB)
        return SimpleNamespace(total=total, free=h["free"], used=total - h["free"])

    def nvmlDeviceGetComputeMode(self, h):
        if h["uuid"].startswith("MIG-"):
            raise NVMLError_NotSupported()
        return h.get("mode", 0)

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=p, usedGpuMemory=GIB) for p in h.get("pids", [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return [SimpleNamespace(pid=p, usedGpuMemory=GIB) for p in h.get("graphics", [])]

    def nvmlDeviceGetUtilizationRates(self, h):
        if h.get("util") == "unsupported":
            raise NVMLError_NotSupported()
        return SimpleNamespace(gpu=h.get("util", 0), memory=0)

    def nvmlDeviceGetMigMode(self, h):
        if "mig" not in h:
            raise NVMLError_NotSupported()
        return (1, 1)

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return len(h["mig"])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, i):
        return h["mig"][i]


def two_gpus(**second):
    return [{"name": "H100", "uuid": "GPU-aaaa", "free": 70 * GIB},
            {"name": "H100", "uuid": "GPU-bbbb", "free": 4 * GIB, **second}]


def test_unavailable_says_why():
    handle = nvml.Nvml.open(FakeNvml([], init_error="Driver Not Loaded"))
    assert not handle.available and "Driver Not Loaded" in handle.reason
    assert nvml.Nvml.open(FakeNvml([])).reason == "NVML sees no GPU"


def test_gpus_memory_and_compute_mode():
    fake = FakeNvml(two_gpus(mode=3))
    with nvml.Nvml.open(fake) as handle:
        gpus = handle.gpus()
    assert fake.shutdown
    assert [g.uuid for g in gpus] == ["GPU-aaaa", "GPU-bbbb"]
    assert gpus[1].compute_mode == "EXCLUSIVE_PROCESS"
    assert [g.index for g in nvml.short_of_memory(gpus, 8.0)] == [1]


@pytest.mark.parametrize(("cvd", "expected"), [
    (None, [0, 1]), ("", []), ("1", [1]), ("1,0", [1, 0]), ("GPU-bb", [1]),
    ("0,7,1", [0]),  # CUDA stops at the first entry that matches nothing
])
def test_visible_follows_cuda_semantics(cvd, expected):
    gpus = nvml.Nvml.open(FakeNvml(two_gpus())).gpus()
    assert [g.index for g in nvml.visible(gpus, cvd)] == expected


def test_gpu_gate_reserves_memory_for_admitted_children():
    from harness.phase2.executors.gpu import GpuGate

    gate = GpuGate(nvml.Nvml.open(FakeNvml([{"name": "A", "uuid": "GPU-1",
                                             "free": 20 * GIB}])), 8.0)
    assert gate.allows(0)[0] and gate.allows(1)[0]
    ok, why = gate.allows(2)
    assert not ok and "below 8.0 GiB" in why
    assert GpuGate(nvml.Nvml(None, "no"), 8.0).allows(5)[0]
