"""Phase 2 on a real local Ray cluster: the budget as a `threads` resource, Ray doing the
admission control, verdicts and logs back in the driver's OUT, resume across executors,
and no Ray process left behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

from harness.phase2.need.caps import Recipe
from tests.fixes.conftest import FAKE_TEMPLATE

pytestmark = [pytest.mark.fixes, pytest.mark.slow, pytest.mark.timeout(600)]

FITS_TWO = 60  # `threads` of the node: two capped reference children (need ~24), not three
RAY = str(Path(sys.executable).with_name("ray"))
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0",
           # Ray >= 2.5x starts clusters with token auth; a driver joining one says so.
           "RAY_AUTH_MODE": "token"}


# Every Ray process these tests start (daemons, workers, the drivers' own local clusters)
# inherits this from env(); a developer's own cluster beside the suite has none of it.
TAG_ENV, TAG = "HARNESS_TEST_RAY_TAG", f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def env() -> dict[str, str]:
    """This test's environment (its own plan cache and XDG dirs; the suite's sandbox HOME,
    where the cluster keeps its token) for Ray and the drivers, tagged as this suite's."""
    return {**os.environ, **RAY_ENV, TAG_ENV: TAG}
RAY_DAEMONS = {"raylet", "gcs_server", "plasma_store"}


def is_ray(proc: psutil.Process) -> bool:
    """A Ray daemon, worker (ray::...) or one of Ray's Python tools."""
    name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
    return (name in RAY_DAEMONS or name.startswith("ray::") or cmdline.startswith("ray::")
            or "site-packages/ray/" in cmdline)


def tagged(proc: psutil.Process) -> bool:
    try:
        return proc.environ().get(TAG_ENV) == TAG
    except (psutil.Error, OSError):  # gone, or another user's: not ours
        return False


def ray_processes() -> set[int]:
    """The Ray processes these tests started (by their tag), never the machine's others."""
    return {proc.pid for proc in psutil.process_iter(["name", "cmdline"])
            if is_ray(proc) and tagged(proc)}


def test_only_the_suites_own_ray_processes_count():
    """A developer's own Ray process beside the suite is not ours; one with our tag is."""
    looks_like_ray = [sys.executable, "-c", "import time; time.sleep(60)",
                      "/opt/site-packages/ray/scripts/scripts.py"]
    foreign = subprocess.Popen(looks_like_ray, env={**os.environ, **RAY_ENV})
    ours = subprocess.Popen(looks_like_ray, env=env())
    try:
        deadline = time.monotonic() + 10
        while ours.pid not in ray_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        found = ray_processes()
        assert ours.pid in found and foreign.pid not in found
    finally:
        for proc in (foreign, ours):
            proc.kill()
            proc.wait()


def wait_gone(pids: set[int], within_s: float = 30.0) -> set[int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        left = {p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        if not left:
            return set()
        time.sleep(0.5)
    return left


def phase2(*args: str, template: list[str] | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "harness", "phase2", "run", "--progress", "lines", *args]
    if template:
        argv += ["--", *template]
    return subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=500,
                          check=False)


def grid_file(path: Path, rows: list[dict]) -> str:
    path.write_text(json.dumps(rows))
    return str(path)


def ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


def most_at_once(records: list[dict]) -> int:
    """From the ledger's own start/end times: the most evaluations running at one instant."""
    return max(sum(r["started_at"] <= t < r["ended_at"] for r in records)
               for t in (r["started_at"] for r in records))


def shape(results: dict) -> tuple[set[str], list[set[str]]]:
    return set(results["summary"]), [set(e) for e in results["evaluations"]]


def test_a_run_starts_and_stops_its_own_cluster(tmp_path):
    before = ray_processes()
    grid = grid_file(tmp_path / "grid.json", [{"mode": "ok", "arg": i} for i in range(2)])
    done = phase2("--executor", "ray", "--tasks-budget", str(FITS_TWO), "--grid", grid,
                  "--out", str(tmp_path / "out"), template=FAKE_TEMPLATE)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["executor"] == "ray" and summary["cluster"]["started_here"]
    assert summary["budget"]["limit"] == FITS_TWO
    assert wait_gone(ray_processes() - before) == set()


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head` on loopback: 4 CPUs, so only `threads` can hold runs to two."""
    before = ray_processes()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = subprocess.run(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=4", f"--resources={json.dumps({'threads': FITS_TWO})}",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
         f"--object-store-memory={200 << 20}"],
        capture_output=True, text=True, env=env(), timeout=180, check=False)
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env(), timeout=120,
                       check=False)
        left = wait_gone(ray_processes() - before)
        shutil.rmtree(temp, ignore_errors=True)
        assert left == set(), f"Ray processes left after ray stop: {sorted(left)}"


def test_six_evaluations_never_more_than_the_threads_allow(ray_cluster, tmp_path):
    # A tiny command in this host's plan cache (peak 1) is no evidence about the reference
    # command: before the fix every first-wave child started under a grant of 2 and died.
    from harness.phase2.need import cache as plan_cache

    plan_cache.save(Recipe(["python", "-c", "print(1)"], {}), 1)
    out = tmp_path / "ray"
    done = phase2("--executor", "ray", "--ray-address", ray_cluster, "--max-evals", "6",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert [e["verdict"] for e in results["evaluations"]] == ["ok"] * 6, results["summary"]
    records = ledger(out)
    assert len(records) == 6
    # Ray admitted by `threads` (60 = two needs of ~24), not by CPUs (4 declared).
    assert most_at_once(records) == 2, [(r["started_at"], r["ended_at"]) for r in records]
    assert results["summary"]["max_running"] == 2
    need = results["summary"]["per_child_need"]
    assert 2 * need <= FITS_TWO < 3 * need, results["summary"]["decisions"]
    assert all(r["attempts"] - len(r["guesses"]) == 1 for r in records), records
    for evaluation in results["evaluations"]:  # logs are the driver's, complete
        log_dir = Path(evaluation["log_dir"])
        assert log_dir.is_relative_to(out)
        assert "cv_score_mean" in json.loads((log_dir / "metrics.json").read_text())
        events = [json.loads(x)["event"] for x in (log_dir / "events.jsonl").open()]
        assert events[0] == "start" and events[-1] == "completed", events
        assert (log_dir / "stderr.log").exists() and (log_dir / "stdout.log").exists()
        assert len(evaluation["metrics"]["cv_scores"]) == 3


def test_hang_and_exhaustion_come_back_classified(ray_cluster, tmp_path):
    out = tmp_path / "ray"
    grid = grid_file(tmp_path / "grid.json", [{"mode": "ok", "arg": 0},
                                              {"mode": "sleep", "arg": 600},
                                              {"mode": "threads", "arg": 200}])
    done = phase2("--executor", "ray", "--ray-address", ray_cluster, "--grid", grid,
                  "--stall-timeout", "5", "--out", str(out), template=FAKE_TEMPLATE)
    assert done.returncode == 1, done.stderr
    results = json.loads((out / "results.json").read_text())
    ok, hang, exhausted = results["evaluations"]
    assert (ok["verdict"], hang["verdict"], exhausted["verdict"]) == (
        "ok", "hang", "thread_exhaustion"), results["summary"]
    assert "sleep" in (Path(hang["log_dir"]) / "stacks.txt").read_text()
    # It died within the grant the runner guessed (not an attempt of its own), then ran on
    # a node of its own, the whole budget: dying there is final.
    assert exhausted["attempts"] == 2
    record = next(r for r in ledger(out) if r["key"] == exhausted["key"])
    assert [g["attempt"] for g in record["guesses"]] == [1], record["guesses"]
    assert any("can't start new thread" in e for e in record["evidence"]), record["evidence"]
    assert record["attempt_verdicts"] == ["thread_exhaustion"] * 2
    assert sorted(p.name for p in (out / "evals" / exhausted["key"]).iterdir()) == [
        "attempt-1", "attempt-2"]


def test_resume_across_executors(ray_cluster, tmp_path):
    out = tmp_path / "out"
    grid = grid_file(tmp_path / "grid.json", [{"mode": "ok", "arg": 0},
                                              {"mode": "ok", "arg": 1},
                                              {"mode": "exit", "arg": 3}])
    first = phase2("--grid", grid, "--out", str(out), template=FAKE_TEMPLATE)
    assert first.returncode == 1, first.stderr
    local = json.loads((out / "results.json").read_text())
    before = ledger(out)
    assert [r["verdict"] for r in before] == ["ok", "ok", "error"] or sorted(
        r["verdict"] for r in before) == ["error", "ok", "ok"]

    again = phase2("--executor", "ray", "--ray-address", ray_cluster, "--resume",
                   "--retry-failed", "--grid", grid, "--out", str(out), template=FAKE_TEMPLATE)
    assert again.returncode == 1, again.stderr
    after = ledger(out)
    assert after[:3] == before  # finished lines untouched
    assert [r["verdict"] for r in after[3:]] == ["error"]  # only the failed one ran again
    failed = after[3]["key"]
    assert sorted(p.name for p in (out / "evals" / failed).iterdir()) == [
        "attempt-1", "attempt-2"]  # the local attempt's logs are kept
    ray_results = json.loads((out / "results.json").read_text())
    assert ray_results["summary"]["executor"] == "ray"
    assert local["summary"]["executor"] == "local"
    assert shape(ray_results) == shape(local)  # same results, whichever executor

    back = phase2("--resume", "--grid", grid, "--out", str(out), template=FAKE_TEMPLATE)
    assert back.returncode == 1, back.stderr  # and back: nothing left to run locally
    assert ledger(out) == after
    assert json.loads((out / "results.json").read_text())["summary"]["by_verdict"] == {
        "ok": 2, "error": 1}


def test_sigterm_stops_the_run_and_its_children_on_the_cluster(ray_cluster, tmp_path):
    from harness.host import cgroup

    owner = cgroup.owner_pid()  # the session's: the cluster's workers inherit it from env()
    groups_before = set(cgroup.leftovers(owner=owner))
    grid = grid_file(tmp_path / "grid.json", [{"mode": "sleep", "arg": 600 + i}
                                              for i in range(2)])
    argv = [sys.executable, "-m", "harness", "phase2", "run", "--progress", "lines",
            "--executor", "ray", "--ray-address", ray_cluster, "--grid", grid,
            "--out", str(tmp_path / "out"), "--", *FAKE_TEMPLATE]
    driver = subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sleepers() -> list[psutil.Process]:  # the fake children, started by Ray workers
        return [p for p in psutil.process_iter(["cmdline"])
                if (p.info["cmdline"] or [])[-2:] in (["sleep", "600"], ["sleep", "601"])
                and "child.py" in " ".join(p.info["cmdline"])]

    deadline = time.monotonic() + 120
    while not sleepers() and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    started = sleepers()
    assert started, "no evaluation started on the cluster"
    driver.terminate()
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 128 + 15, stderr
    assert wait_gone({p.pid for p in started}) == set()  # killed by their launch groups
    assert set(cgroup.leftovers(owner=owner)) == groups_before  # and their cgroups removed
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["interrupted"] and len(summary["missing"]) == 2
    stopped = [json.loads(p.read_text())
               for p in (tmp_path / "out" / "evals").glob("*/attempt-1/outcome.json")]
    assert stopped and all(o["evidence"][0].startswith("interrupted")
                           for o in stopped)  # their logs came back too


def test_a_pruning_rule_stops_a_trial_on_the_cluster_while_it_reports(ray_cluster, tmp_path):
    """Its node pushes the child's events to the driver as they are written (live.py), so
    the rule sees step 2 long before the child would end (100 steps, 0.2 s apart)."""
    out = tmp_path / "ray"
    grid = grid_file(tmp_path / "grid.json", [{"mode": "report", "arg": "9:100"},
                                              {"mode": "ok", "arg": 0}])
    done = phase2("--executor", "ray", "--ray-address", ray_cluster, "--prune-above",
                  "loss=1@2", "--grid", grid, "--out", str(out), template=FAKE_TEMPLATE)
    assert done.returncode == 0, done.stderr
    pruned, ok = json.loads((out / "results.json").read_text())["evaluations"]
    assert (pruned["verdict"], ok["verdict"]) == ("pruned", "ok"), pruned
    assert pruned["attempts"] == 1  # never retried
    events = [json.loads(x) for x in (Path(pruned["log_dir"]) / "events.jsonl").open()]
    steps = [e["step"] for e in events if e["event"] == "report"]
    assert 2 <= max(steps) < 100, steps  # stopped while it ran, not told at its end
    assert "completed" not in {e["event"] for e in events}
    record = next(r for r in ledger(out) if r["key"] == pruned["key"])
    assert any("pruned at step 2" in n for n in record["notes"]), record["notes"]
