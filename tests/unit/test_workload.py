"""The reference workload: arguments, events, metrics, output volume.

Argument errors are checked without TensorFlow (it loads after parsing); the
field command itself runs once for real (~8 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.launch.command import FIELD_ARGS
from harness.workload import __main__ as workload_main
from harness.workload import data, events

WORKLOAD = [sys.executable, "-m", "harness.workload"]


def _run(args, tmp_path=None, **kw):
    return subprocess.run([*WORKLOAD, *args], capture_output=True, text=True, check=False,
                          cwd=tmp_path, **kw)


@pytest.mark.parametrize("args", [
    ["--bogus"], ["--mode", "tune"], ["--cv_folds", "x"], ["--cv_folds", "1"],
    ["--data_percentage", "0"], ["--data_percentage", "101"], ["--verbosity", "3"],
    ["--resume_mode", "later"], ["--threshold_I", "abc"], ["--threshold_P", "-1"],
    ["--device-mode", "quad"], ["--min-gpu-memory", "-2"], ["--cpu-devices", "0"],
    ["--epochs", "0"], ["--host-cores", "0"], ["--seed", "1.5"],
])
def test_bad_arguments_one_line_exit_2(args):
    done = _run(args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness.workload: error:")


@pytest.fixture(scope="session")
def field_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("field")
    done = _run([*FIELD_ARGS, "--events", str(out / "events.jsonl"),
                 "--metrics-out", str(out / "metrics.json")])
    return done, out


def test_field_command_completes(field_run):
    done, _ = field_run
    assert done.returncode == 0, done.stderr[-2000:]


def test_events_in_order_with_schema(field_run):
    _, out = field_run
    records = events.read_events(out / "events.jsonl")
    names = [r["event"] for r in records]
    assert names == ["start", "devices", "work_started", *["fold_done", "report"] * 3,
                     "completed"]
    reports = [events.report_of(r) for r in records if r["event"] == "report"]
    assert [step for step, _ in reports] == [1, 2, 3]  # what a search reads live
    assert all("cv_score_mean" in metrics for _, metrics in reports)
    assert all(isinstance(r["t"], float) for r in records)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    start = records[0]
    assert {"pid", "argv", "limits", "pids_cgroup", "env"} <= set(start)
    assert set(start["limits"]) == {"nproc", "as", "stack", "nofile"}
    devices = records[1]
    assert devices["kind"] in ("cpu", "gpu") and devices["replicas"] == len(devices["names"])
    if devices["kind"] == "cpu":
        assert devices["replicas"] == 2  # --cpu-devices default: mirrored over 2 CPUs
    assert [r["fold"] for r in records if r["event"] == "fold_done"] == [0, 1, 2]
    for record in (devices, records[-1]):  # the program's own account of device memory
        assert set(record["device_bytes"]) == set(devices["names"])
        if devices["kind"] == "cpu":
            assert all(b == {"current": 0, "peak": 0} for b in record["device_bytes"].values())
        else:
            assert all(b["peak"] > 0 for b in records[-1]["device_bytes"].values())


def test_metrics_content(field_run):
    _, out = field_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["cv_scores"]) == 3
    assert metrics["cv_score_mean"] == pytest.approx(sum(metrics["cv_scores"]) / 3)
    assert 0.5 < metrics["cv_score_mean"] <= 1.0  # it learns something
    assert metrics["thresholds"] == {"I": 17.0, "P": 18.0, "R": 19.0}
    assert metrics["n_samples"] > 100 and metrics["duration_s"] > 0
    assert metrics["devices"]["replicas"] >= 1


def test_events_from_environment(tmp_path):
    """HARNESS_EVENTS works like --events (a launcher injects it); bad thresholds fail
    before TensorFlow loads, with a failed event."""
    env = {**os.environ, "HARNESS_EVENTS": str(tmp_path / "ev.jsonl")}
    done = _run(["--threshold_I", "0", "--threshold_P", "0", "--threshold_R", "0"], env=env)
    assert done.returncode == 1
    names = [r["event"] for r in events.read_events(tmp_path / "ev.jsonl")]
    assert names == ["start", "failed"]


def test_metrics_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    workload_main.write_metrics(str(target), {"a": 1})

    def disk_full(fd):  # the new text is written but cannot be made durable
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        workload_main.write_metrics(str(target), {"a": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"a": 1}  # the reader never sees half a file


def test_verbosity_2_writes_over_256_kib(tmp_path):
    args = list(FIELD_ARGS)
    args[args.index("--verbosity") + 1] = "2"
    done = _run(args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.encode()) >= 256 * 1024


def test_dataset_is_deterministic_and_thresholds_select():
    x1, y1, q1 = data.make(0, 100)
    x2, y2, _ = data.make(0, 100)
    assert (x1 == x2).all() and (y1 == y2).all()
    strict, loose = data.select(q1, (10, 10, 10)), data.select(q1, (20, 20, 20))
    assert set(strict) < set(loose)
    folds = data.folds(len(loose), 3, 0)
    assert sorted(i for _, val in folds for i in val) == list(range(len(loose)))
