from __future__ import annotations

import json
import os
import subprocess
import sys

KEYS = {"is_root", "rlimits", "tasks", "pids_cgroup", "threads_max", "cpus", "env",
        "tensorflow", "gpus", "risks"}


def doctor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness", "doctor", *args],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})


def test_json_has_the_keys_and_root_risk():
    done = doctor("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= KEYS
    assert report["is_root"] == (os.getuid() == 0)
    ids = {r["id"] for r in report["risks"]}
    if report["is_root"]:
        assert "root-ulimit-u-not-enforced" in ids
    assert all({"id", "risk", "fix"} <= set(r) for r in report["risks"])
    assert report["tensorflow"]["importable"]
    if report["gpus"] is None:
        assert report["gpu_reason"]


def test_empty_cuda_visible_devices_is_a_risk():
    report = json.loads(doctor("--json", env={"CUDA_VISIBLE_DEVICES": ""}).stdout)
    assert "cuda-visible-devices-empty" in {r["id"] for r in report["risks"]}
    assert report["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_strict_exits_1_on_risk():
    done = doctor("--strict", env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 1
    assert "cuda-visible-devices-empty" in done.stdout


def test_many_cpus_without_caps_is_a_risk():
    from harness.cli import doctor as doc

    report = json.loads(doctor("--json").stdout)
    report.update(cpus=64, env={})
    assert "uncapped-thread-pools" in {r["id"] for r in doc.risks(report)}
    report["env"] = {"TF_NUM_INTRAOP_THREADS": "8"}
    assert "uncapped-thread-pools" not in {r["id"] for r in doc.risks(report)}


def test_exclusive_compute_mode_is_a_risk():
    from harness.cli import doctor as doc

    report = json.loads(doctor("--json").stdout)
    report["gpus"] = [{"index": 0, "compute_mode": "EXCLUSIVE_PROCESS"}]
    assert "gpu-compute-mode" in {r["id"] for r in doc.risks(report)}


def test_probe_measures_one_child():
    report = json.loads(doctor("--json", "--probe").stdout)
    probe = report["probe"]
    assert probe["verdict"] == "ok" and probe["peak_threads"] > 10
    assert probe["concurrent_children"] >= 1
