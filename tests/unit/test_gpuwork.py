"""GPU work from several sources, against a fake NVML shaped like pynvml: a container
(host PIDs), MIG (utilisation NotSupported), a CUDA_VISIBLE_DEVICES subset, no NVML, and
the program's own account beside NVML's."""

from __future__ import annotations

from harness.host import nvml
from harness.supervise import gpuwork

from .test_nvml import GIB, FakeNvml, two_gpus

HOST_PID = 4_000_000  # beyond pid_max here: a PID from another namespace


def _probe(fake: FakeNvml, cvd: str | None = None) -> tuple[gpuwork.GpuWorkProbe, list]:
    handle = nvml.Nvml.open(fake)
    devices = nvml.visible(handle.gpus(), cvd)
    return gpuwork.GpuWorkProbe(handle, devices), fake._gpus


def test_own_pid_on_the_device_is_observed():
    probe, gpus = _probe(FakeNvml(two_gpus()))
    probe.sample({1, 2})
    assert probe.result.status == "not_observed" and probe.result.samples == 1
    gpus[1]["pids"] = [4242]
    probe.sample({4242, 7})
    assert probe.result.status == "observed" and probe.result.pids == [4242]
    assert probe.result.sources["nvml-pids"] == "yes"
    assert set(probe.memory_used) == {g.uuid for g in probe.devices}  # what samples record


def test_container_host_pids_count_as_new_processes():
    probe, gpus = _probe(FakeNvml(two_gpus()))
    gpus[0]["pids"] = [HOST_PID]  # the launch's process, as the host numbers it
    gpus[0]["free"] -= 2 * GIB
    probe.sample({123})
    result = probe.result
    assert result.status == "observed" and result.pids == []
    assert result.sources["new-processes"] == "yes" and result.sources["device-memory"] == "yes"
    assert any("not in this namespace" in e for e in result.evidence)
    judged = gpuwork.judge(result.record(), None)  # a foreign command: no account of its own
    assert judged["status"] == "observed"


def test_a_process_that_was_there_before_is_not_the_launch():
    fake = FakeNvml(two_gpus(pids=[HOST_PID]))
    probe, _ = _probe(fake)
    probe.sample({123})
    assert probe.result.status == "not_observed"


def test_mig_instances_are_devices_and_utilisation_is_unsupported():
    mig = {"name": "MIG 1g.10gb", "uuid": "MIG-aaaa", "free": 9 * GIB, "total": 10 * GIB,
           "util": "unsupported"}
    fake = FakeNvml([{"name": "A100", "uuid": "GPU-a100", "free": 70 * GIB, "mig": [mig]}])
    handle = nvml.Nvml.open(fake)
    gpus = handle.gpus()
    assert [g.uuid for g in gpus] == ["GPU-a100", "MIG-aaaa"] and gpus[1].mig_of == 0
    assert [g.uuid for g in nvml.visible(gpus, None)] == ["MIG-aaaa"]  # used through MIG
    probe = gpuwork.GpuWorkProbe(handle, nvml.visible(gpus, "MIG-aaaa"))
    mig["free"] -= 3 * GIB
    probe.sample({123})
    assert probe.result.sources["utilisation"] == "unsupported"
    assert probe.result.sources["device-memory"] == "yes"
    assert probe.result.status == "observed"


def test_only_the_launchs_devices_count():
    probe, gpus = _probe(FakeNvml(two_gpus()), cvd="1")
    assert probe.result.devices == ["GPU-bbbb"]
    gpus[0]["free"] -= 4 * GIB  # another job on GPU 0
    gpus[0]["util"] = 90
    probe.sample({123})
    assert probe.result.status == "not_observed"
    gpus[1]["util"] = 40
    probe.sample({123})
    assert probe.result.status == "observed" and probe.result.max_utilization == 40


def test_without_nvml_the_status_is_unknown():
    probe = gpuwork.GpuWorkProbe(nvml.Nvml(None, "nvidia-ml-py is not installed"), [])
    probe.sample({1})
    assert probe.result.status == "unknown" and "not installed" in probe.result.reason
    assert gpuwork.judge(probe.result.record(), None)["status"] == "unknown"
    gpu_run = {"kind": "gpu", "device_bytes": {"/device:GPU:0": {"peak": 5 << 20}}}
    assert gpuwork.judge(probe.result.record(), gpu_run)["status"] == "observed"


def test_the_programs_account_decides_over_a_shared_device():
    """A sibling's work moves the device's numbers; the program says it trained on CPU."""
    probe, gpus = _probe(FakeNvml(two_gpus()))
    gpus[0]["free"] -= 4 * GIB
    probe.sample({123})
    assert probe.result.sources["device-memory"] == "yes"
    judged = gpuwork.judge(probe.result.record(), {"kind": "cpu", "device_bytes": {
        "/device:CPU:0": {"current": 0, "peak": 0}}})
    assert judged["status"] == "not_observed" and judged["sources"]["program"] == "no"


def test_gpu_run_with_zero_bytes_is_no_work():
    account = {"kind": "gpu", "device_bytes": {"/device:GPU:0": {"current": 0, "peak": 0}}}
    assert gpuwork.program_account(account) == "no"
    assert gpuwork.program_account({"kind": "gpu"}) is None  # no account: NVML decides
