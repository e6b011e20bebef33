"""Phase 2 on a 3-node Ray cluster on this machine (Ray's own multi-node test utility,
ray.cluster_utils.Cluster): a node killed mid-run, a driver that runs into its deadline,
and a driver killed with SIGKILL, each finished by --resume with nothing lost or redone.
The reference workload, 8 evaluations; every node declares 40 `threads` and 1 CPU."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.phase2 import RunOptions, run
from tests.fixes.test_ray import env, ray_processes, wait_gone

pytestmark = [pytest.mark.fixes, pytest.mark.slow, pytest.mark.timeout(600)]
EVALS = 8
NODES = 3


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    before = ray_processes()
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [made.add_node(num_cpus=1, resources={"threads": 40}) for _ in range(NODES)]
    made.wait_for_nodes()
    yield made, nodes
    made.shutdown()
    # Afterwards: no Ray process of the cluster, no workload, no harness cgroup (the
    # harness's pytest plugin checks the cgroups and marked processes after each test).
    assert not wait_gone(ray_processes() - before), "Ray processes outlived the cluster"
    assert not wait_gone({p.pid for p in workloads()}), "a workload outlived the cluster"


def ledger(out: Path) -> list[dict]:
    path = out / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def workloads() -> list[psutil.Process]:
    """The reference workload's processes on this machine."""
    return [p for p in psutil.process_iter(["cmdline"])
            if "harness.workload" in " ".join(p.info["cmdline"] or [])]


JUST_STARTED_S = 3.0  # well inside one reference evaluation (T >= 5 s)


def _kill_a_busy_node(made, nodes, out: Path, killed: list) -> None:
    """Once 2 evaluations finished, kill the node (its raylet and workers, no grace)
    under which a workload has just started (it cannot finish first)."""
    raylets = {n.all_processes["raylet"][0].process.pid: n for n in nodes}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not killed:
        time.sleep(0.2)
        if len(ledger(out)) < 2:
            continue
        for proc in workloads():
            # Started a moment ago: it cannot finish before the kill lands. (A moment on a
            # loaded box: one look at every process here can itself take a second.)
            if time.time() - proc.create_time() > JUST_STARTED_S:
                continue
            with_node = [a.pid for a in proc.parents() if a.pid in raylets]
            if with_node:
                made.remove_node(raylets[with_node[0]], allow_graceful=False)
                killed.append(with_node[0])
                return


def test_a_lost_node_is_retried_elsewhere(cluster, tmp_path):
    made, nodes = cluster
    out, killed = tmp_path / "out", []
    killer = threading.Thread(target=_kill_a_busy_node, args=(made, nodes, out, killed))
    killer.start()
    results = run(None, None, RunOptions(executor="ray", ray_address=made.address,
                                         max_evals=EVALS, out=out, live=False))
    killer.join()
    assert killed, "no node was killed: the test did not test anything"
    summary = results["summary"]
    assert summary["ok"] == EVALS, summary
    rows = ledger(out)
    assert len(rows) == EVALS and len({r["key"] for r in rows}) == EVALS  # never twice
    lost = [r for r in rows if "node_lost" in r["attempt_verdicts"]]
    assert lost, [r["attempt_verdicts"] for r in rows]
    for row in lost:
        first = Path(row["log_dir"]).parent / "attempt-1" / "outcome.json"
        evidence = json.loads(first.read_text())["evidence"]
        assert any("NodeDiedError" in e or "WorkerCrashedError" in e for e in evidence)
        assert any(e.startswith("it ran on node ") for e in evidence), evidence
        assert any("not sent back" in e for e in evidence), evidence
    assert any("node_lost on attempt 1" in d for d in summary["decisions"])


def _driver(out: Path, address: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "harness", "phase2", "run", "--executor", "ray",
            "--ray-address", address, "--max-evals", str(EVALS), "--out", str(out),
            "--progress", "lines", "--json", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
                            text=True)


def test_deadline_then_sigkill_then_resume(cluster, tmp_path):
    made, _ = cluster
    address, out = made.address, tmp_path / "out"
    # 1. A deadline: what runs is stopped cleanly, the queue is left, the summary says so.
    first = _driver(out, address, "--deadline", "15")
    stdout, stderr = first.communicate(timeout=300)
    summary = json.loads(stdout)["summary"]
    assert first.returncode == 1, stderr[-2000:]
    assert summary["interrupted"].startswith("deadline of 15 s reached"), summary
    assert summary["missing"] and summary["finished"] < EVALS
    assert not wait_gone({p.pid for p in workloads()}, 20)
    # 2. --resume, killed with SIGKILL once one more evaluation finished.
    before = len(ledger(out))
    second = _driver(out, address, "--resume")
    deadline = time.monotonic() + 300
    while len(ledger(out)) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert second.poll() is None, "the driver ended before it could be killed"
    second.send_signal(signal.SIGKILL)
    second.communicate(timeout=60)
    # Its evaluations die with their driver (Ray ends the job's workers; pdeathsig).
    assert not wait_gone({p.pid for p in workloads()}, 30), "the old driver's children live"
    # 3. --resume again: everything finished, nothing lost or redone.
    third = _driver(out, address, "--resume")
    stdout, stderr = third.communicate(timeout=400)
    assert third.returncode == 0, stderr[-3000:]
    final = json.loads(stdout)["summary"]
    assert final["ok"] == EVALS and not final["missing"], final
    rows = ledger(out)
    assert len(rows) == EVALS and len({r["key"] for r in rows}) == EVALS
