"""The GPU CI gate: real GPU work, proven from NVML and, for the reference workload, the
program's own account.

Run with `nox -s gpu` (TensorFlow, the reference workload) or, where TensorFlow is not
installed, with the stand-in command (see tests/gpu/README.md and `nox -s gpu -- --standin`).
Without a visible GPU the run fails with a message naming the missing GPU; it never skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.host import nvml
from harness.launch.condition import Condition
from harness.phase2 import RunOptions, run
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import Recipe, cpus, thread_caps

pytestmark = [pytest.mark.gpu, pytest.mark.timeout(900)]
STANDIN = Path(__file__).resolve().parent / "gpu_train.py"


def _visible(cvd: str | None) -> list[nvml.Gpu]:
    with nvml.Nvml.open() as handle:
        return nvml.visible(handle.gpus(), cvd)


def test_the_command_does_gpu_work_on_every_visible_gpu(launch, repro_command):
    [o] = launch("phase2")
    assert o.verdict == "ok", o.evidence
    assert o.gpu_work["status"] == "observed", o.gpu_work
    expected = {g.uuid for g in _visible(os.environ.get("CUDA_VISIBLE_DEVICES"))}
    assert set(o.gpu_work["devices"]) == expected
    assert set(o.gpu_work["devices_seen"]) == expected, o.gpu_work["evidence"]
    if repro_command.is_reference:  # MirroredStrategy used every GPU, by its own account
        assert o.devices["kind"] == "gpu" and o.devices["replicas"] == len(expected)
        assert all(b["peak"] > 0 for b in o.devices["device_bytes"].values())


def test_every_field_method_reaches_the_gpu(launch):
    for method in ("subprocess-pipes", "os-system", "env-isolated"):
        [o] = launch(method)
        assert o.verdict == "ok" and o.gpu_work["status"] == "observed", (method, o.evidence)


def test_hidden_gpus_are_no_gpu_work(launch):
    [o] = launch("subprocess-pipes", Condition(env={"CUDA_VISIBLE_DEVICES": ""}))
    assert o.verdict == "no_gpu_work", o.evidence
    assert o.gpu_work["devices"] == []


def test_a_subset_is_watched_and_used(launch):
    gpus = _visible(None)
    subset = gpus[-1:]  # the last GPU alone
    [o] = launch("env-isolated", Condition(env={"CUDA_VISIBLE_DEVICES": str(subset[0].index)
                                                if subset[0].mig_of is None
                                                else subset[0].uuid}))
    assert o.verdict == "ok", o.evidence
    assert o.gpu_work["devices"] == [subset[0].uuid]
    assert o.gpu_work["devices_seen"] == [subset[0].uuid], o.gpu_work["evidence"]


def test_gpu_memory_admission_holds_back_an_evaluation(tmp_path):
    """One evaluation holds 70% of each GPU's free memory; with --min-gpu-memory at half
    of the smallest free memory, the next one waits until the first is done."""
    smallest = min(g.memory_free for g in _visible(os.environ.get("CUDA_VISIBLE_DEVICES")))
    template = [sys.executable, str(STANDIN), "--fill", "0.7", "--hold", "15",
                "--steps", "{steps}"]
    out = tmp_path / "out"
    out.mkdir()  # the per-child thread need is known: only GPU memory can hold one back
    plans.save_measurement(out, Recipe(template, thread_caps(cpus(), 2)), 10)
    results = run(template, [{"steps": 100}, {"steps": 101}],
                  RunOptions(out=out, jobs=2, live=False,
                             min_gpu_memory=smallest / 2 / nvml.GIB))
    summary = results["summary"]
    assert summary["ok"] == 2, results
    assert summary["max_running"] == 1, summary["decisions"]
    assert any(d.startswith("waiting: GPUs") for d in summary["decisions"])
