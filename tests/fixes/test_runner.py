"""The Phase 2 runner under the repro conditions: where the field's approach fails, the
runner completes (real workload, real budgets)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from harness.errors import InputError
from harness.host import cgroup
from harness.host.proctree import marked
from harness.phase2 import RunOptions, run
from harness.phase2.executors.gpu import check_devices
from tests.fixes.conftest import FAKE_TEMPLATE

pytestmark = [pytest.mark.fixes, pytest.mark.timeout(600)]

FITS_ONE = 30  # one reference child peaks at ~22 threads
FITS_TWO = 60  # two children, even with the runner's 1.25x margin (2 x 29); not three


def _verdicts(results: dict) -> list[str]:
    return [e["verdict"] for e in results["evaluations"]]


def test_shared_budget_naive_loses_runner_completes(tmp_path):
    naive = run(None, None, RunOptions(strategy="naive", max_evals=4, tasks_budget=FITS_ONE,
                                       out=tmp_path / "naive", live=False))
    assert _verdicts(naive).count("thread_exhaustion") >= 2, _verdicts(naive)
    runner = run(None, None, RunOptions(max_evals=4, tasks_budget=FITS_ONE,
                                        out=tmp_path / "runner", live=False))
    assert _verdicts(runner) == ["ok"] * 4, runner["summary"]
    assert all(len(e["metrics"]["cv_scores"]) == 3 for e in runner["evaluations"])
    assert runner["summary"]["best"]["score"] == max(
        e["metrics"]["cv_score_mean"] for e in runner["evaluations"])


def test_six_evaluations_under_a_budget_for_two_after_a_tiny_command(tmp_path):
    # A tiny command ran by hand first (peak 1): its cache entry is no evidence about the
    # reference command, whose children must never start under a grant sized by it.
    tiny = ["python3", "-c", "import time; print({x}); time.sleep(1.5)"]
    small = run(tiny, [{"x": 1}, {"x": 2}], RunOptions(out=tmp_path / "tiny", live=False))
    assert _verdicts(small) == ["ok"] * 2
    runner = run(None, None, RunOptions(max_evals=6, tasks_budget=FITS_TWO, jobs=4,
                                        out=tmp_path / "runner", live=False))
    summary = runner["summary"]
    assert _verdicts(runner) == ["ok"] * 6, summary
    assert summary["max_running"] >= 2  # it did run children side by side
    assert not any("grants of 2 tasks" in d for d in summary["decisions"])
    ledger = [json.loads(x) for x in (tmp_path / "runner" / "ledger.jsonl").read_text()
              .splitlines()]
    assert len(ledger) == 6 and {r["verdict"] for r in ledger} == {"ok"}
    for row in ledger:  # no attempt of an evaluation was spent on the runner's guesses
        assert row["attempts"] - len(row["guesses"]) == 1, row
    # Children die (if at all) only of their own grant, never of a neighbour's.
    for outcome_file in (tmp_path / "runner" / "evals").glob("*/attempt-*/outcome.json"):
        outcome = json.loads(outcome_file.read_text())
        if outcome["verdict"] != "ok":
            assert outcome["budget"]["refused_this_launch"] > 0, outcome["evidence"]
            assert any("its own grant" in e for e in outcome["evidence"]), outcome["evidence"]
    naive = run(None, None, RunOptions(strategy="naive", max_evals=6, tasks_budget=FITS_TWO,
                                       out=tmp_path / "naive", live=False))
    assert _verdicts(naive).count("thread_exhaustion") >= 3, _verdicts(naive)


def test_parent_with_tf_initialized(tmp_path):
    results = run(None, None, RunOptions(max_evals=2, parent_tf="initialized",
                                         out=tmp_path, live=False))
    assert _verdicts(results) == ["ok", "ok"], results["summary"]


def test_heavy_output_goes_to_files(tmp_path):
    from harness.phase2.grid import default_template

    template = default_template()
    template[template.index("--verbosity") + 1] = "2"
    results = run(template, None, RunOptions(max_evals=1, out=tmp_path, live=False))
    assert _verdicts(results) == ["ok"]
    log = os.path.join(results["evaluations"][0]["log_dir"], "stdout.log")
    assert os.path.getsize(log) >= 256 * 1024


def test_cuda_hidden_is_refused_on_gpu_hosts_and_explicit_elsewhere(tmp_path):
    gpu_host = SimpleNamespace(available=True, gpus=lambda: [object(), object()])
    with pytest.raises(InputError, match="hides all 2 GPUs"):
        check_devices(gpu_host, {"CUDA_VISIBLE_DEVICES": ""})
    check_devices(gpu_host, {"CUDA_VISIBLE_DEVICES": "0"})
    cpu_host = SimpleNamespace(available=False)
    check_devices(cpu_host, {"CUDA_VISIBLE_DEVICES": ""})
    # On this host (no GPU) the run goes ahead, and every evaluation records its devices.
    from harness.repro.plugin import gpu_status

    if gpu_status()[0]:
        with pytest.raises(InputError):
            run(None, None, RunOptions(max_evals=1, env={"CUDA_VISIBLE_DEVICES": ""},
                                       out=tmp_path, live=False))
        return
    results = run(None, None, RunOptions(max_evals=1, env={"CUDA_VISIBLE_DEVICES": ""},
                                         out=tmp_path, live=False))
    [evaluation] = results["evaluations"]
    assert evaluation["verdict"] == "ok"
    assert evaluation["devices"]["kind"] == "cpu" and evaluation["devices"]["physical_gpus"] == 0


def test_a_stalling_evaluation_is_killed_and_the_rest_finish(tmp_path):
    grid = [{"mode": "ok", "arg": "-"}, {"mode": "sleep", "arg": "600"},
            {"mode": "ok", "arg": "-"}]
    results = run(FAKE_TEMPLATE, grid, RunOptions(out=tmp_path, stall_timeout_s=3.0,
                                                  live=False))
    assert _verdicts(results) == ["ok", "hang", "ok"]
    hung = results["evaluations"][1]
    assert hung["attempts"] == 1  # hangs are not retried
    with open(os.path.join(hung["log_dir"], "stacks.txt")) as stacks:
        assert stacks.read().strip()


def test_sigkill_then_resume_loses_and_redoes_nothing(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness", "phase2", "run", "--max-evals", "6",
           "--tasks-budget", str(FITS_TWO), "--out", str(out), "--progress", "lines"]
    runner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        lines = ledger.read_text().splitlines() if ledger.exists() else []
        if len(lines) >= 2:
            break
        time.sleep(0.2)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    before = {json.loads(x)["key"]: x for x in ledger.read_text().splitlines()}
    assert 2 <= len(before) < 6

    owner = f"{cgroup.owner_pid()}:"
    deadline = time.monotonic() + 15
    while marked(owner, prefix=True) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked(owner, prefix=True) == []  # children died with the runner (pdeathsig)

    done = subprocess.run([*cmd, "--resume", "--json"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert _verdicts(results) == ["ok"] * 6
    lines = ledger.read_text().splitlines()
    keys = [json.loads(x)["key"] for x in lines]
    assert len(keys) == 6 and len(set(keys)) == 6  # nothing lost, nothing duplicated
    assert all(lines[i] == before[k] for i, k in enumerate(keys) if k in before)
    for key in before:  # finished evaluations were not redone
        assert sorted(p.name for p in (out / "evals" / key).iterdir()) == ["attempt-1"]
    assert "resume: 2" in done.stderr or f"resume: {len(before)}" in done.stderr
