"""Did a launch do GPU work? Evidence from several independent sources, each named.

- nvml-pids: the launch's own PIDs among the device's compute/graphics processes;
- new-processes: processes that appeared on the launch's devices while it ran and are
  not in this PID namespace (a container or pod: NVML reports the host's PIDs);
- device-memory: memory used on the launch's devices rose above what it was before
  the launch (MIG instances report their own memory);
- utilisation: SM utilisation > 0 on the launch's devices (None on MIG: unsupported);
- the program's own account (the reference workload's per-device bytes), added by
  classify() from the launch's events.

The devices are the ones the launch may use: its own CUDA_VISIBLE_DEVICES. The three
device-level sources cannot tell siblings that share a device apart; their evidence
says so. Without NVML the status is "unknown", never "not_observed".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from harness.host import nvml

MEMORY_RISE_BYTES = 64 << 20  # a CUDA context alone takes a few hundred MiB


@dataclass
class GpuWork:
    """status: observed | not_observed | unknown; sources: name -> yes | no | unsupported."""

    status: str
    reason: str = ""
    devices: list[str] = field(default_factory=list)  # uuids the launch may use
    sources: dict[str, str] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    devices_seen: list[str] = field(default_factory=list)  # uuids with any evidence
    max_utilization: int = 0
    samples: int = 0

    def record(self) -> dict:
        return asdict(self)

    def saw(self, source: str, gpu: nvml.Gpu, line: str) -> None:
        self.status = "observed"
        if gpu.uuid not in self.devices_seen:
            self.devices_seen.append(gpu.uuid)
        if self.sources.get(source) != "yes":
            self.sources[source] = "yes"
            self.evidence.append(line)


class GpuWorkProbe:
    """Sampled by the supervisor while a launch runs; made before the launch starts, so
    the devices' state before it is the baseline."""

    def __init__(self, handle: nvml.Nvml, devices: list[nvml.Gpu]) -> None:
        self._nvml, self.devices = handle, devices
        self.result = GpuWork("not_observed" if handle.available else "unknown", handle.reason,
                              [g.uuid for g in devices])
        self._before: dict[str, tuple[int, set[int]]] = {}
        self.memory_used: dict[str, int] = {}  # uuid -> bytes at the last sample (per device)
        if not handle.available:
            return
        try:
            self._before = {g.uuid: (handle.memory_used(g), set(handle.processes(g)))
                            for g in devices}
        except Exception as exc:  # a driver error is evidence of nothing: say so
            self._failed(exc)
        for name in ("nvml-pids", "new-processes", "device-memory", "utilisation"):
            self.result.sources.setdefault(name, "no")

    def _failed(self, exc: Exception) -> None:
        self.result.status, self.result.reason = "unknown", f"NVML query failed: {exc}"

    def sample(self, tree_pids: set[int]) -> None:
        if self.result.status == "unknown":
            return
        try:
            for gpu in self.devices:
                self._sample(gpu, tree_pids)
        except Exception as exc:
            self._failed(exc)
            return
        self.result.samples += 1

    def _sample(self, gpu: nvml.Gpu, tree_pids: set[int]) -> None:
        handle, result = self._nvml, self.result
        used_before, procs_before = self._before.get(gpu.uuid, (0, set()))
        procs = handle.processes(gpu)
        if mine := set(procs) & tree_pids:
            result.pids = sorted(set(result.pids) | mine)
            result.saw("nvml-pids", gpu,
                       f"NVML lists pids {sorted(mine)} of the launch on {gpu.uuid}")
        if new := set(procs) - procs_before - tree_pids - _visible_pids(procs):
            result.saw("new-processes", gpu,
                       f"{len(new)} process(es) appeared on {gpu.uuid} while the launch ran, "
                       "PIDs not in this namespace (container); shared with any sibling on "
                       "the same device")
        self.memory_used[gpu.uuid] = handle.memory_used(gpu)
        rise = self.memory_used[gpu.uuid] - used_before
        if rise >= MEMORY_RISE_BYTES:
            result.saw("device-memory", gpu, f"memory used on {gpu.uuid} rose {rise >> 20} MiB "
                       "while the launch ran (per device, not per process)")
        busy = handle.utilization(gpu)
        if busy is None:
            result.sources["utilisation"] = "unsupported"
        elif busy > 0:
            result.max_utilization = max(result.max_utilization, busy)
            result.saw("utilisation", gpu, f"SM utilisation {busy}% on {gpu.uuid} (per device)")


def _visible_pids(pids: dict[int, int]) -> set[int]:
    """PIDs that exist in this PID namespace (NVML's host PIDs mostly do not)."""
    return {pid for pid in pids if os.path.exists(f"/proc/{pid}")}


PER_PROCESS = ("nvml-pids", "program")  # say what this launch did, not what a device did


def program_account(devices: dict | None) -> str | None:
    """What the program said of itself: "yes" (bytes on a GPU), "no" (it trained on CPU,
    or its GPUs hold nothing), or None (it gave no account: a foreign command)."""
    if not devices or devices.get("kind") is None:
        return None
    if devices.get("kind") == "cpu":
        return "no"
    gpu_bytes = [b.get("peak", 0) for name, b in (devices.get("device_bytes") or {}).items()
                 if "GPU" in name.upper()]
    if not gpu_bytes:
        return None  # a GPU run that reported no bytes (an older workload): no account
    return "yes" if any(gpu_bytes) else "no"


def judge(gpu_work: dict, devices: dict | None) -> dict:
    """The launch's GPU status from every source. Per-process sources (its PIDs, its own
    account) decide when they speak; device-level ones only where neither can (a foreign
    command in a container): siblings and neighbours move a device's numbers too."""
    record = {**gpu_work, "sources": dict(gpu_work.get("sources") or {}),
              "evidence": list(gpu_work.get("evidence") or [])}
    sources = record["sources"]
    if devices and (said := program_account(devices)) is not None:  # None without devices
        sources["program"] = said
        record["evidence"].append(f"the program's own account: GPU work {said} "
                                  f"(devices: {devices.get('kind')})")
    if any(sources.get(s) == "yes" for s in PER_PROCESS):
        record["status"] = "observed"
    elif sources.get("program") == "no":
        record["status"] = "not_observed"
    elif any(v == "yes" for v in sources.values()):
        record["status"] = "observed"
    elif record.get("status") != "unknown":
        record["status"] = "not_observed"
    return record
