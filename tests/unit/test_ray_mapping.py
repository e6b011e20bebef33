"""The Ray executor's parts that need no cluster: one evaluation run the node's way and
shipped back, the budget-to-resource mapping, the refusals, and life without Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.host import headroom
from harness.launch.command import Command
from harness.phase2.executors.ray import evaluate
from harness.phase2.executors.ray.cluster import Node, check, node_resources, nodes_of
from harness.phase2.executors.ray.executor import most_at_once
from harness.supervise.files import LaunchFiles

FAKE = Path(__file__).resolve().parent.parent / "fakes" / "child.py"
CAPS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _assignment(mode: str, arg: str, grant: int | None, stall_s: float = 30.0
                ) -> evaluate.Assignment:
    return evaluate.Assignment("0000-abcdef12", 1, Command((sys.executable, str(FAKE), mode, arg)),
                               CAPS, grant, 120.0, stall_s)


def test_evaluation_runs_under_its_grant_and_comes_back_whole(tmp_path):
    node, driver = tmp_path / "node", tmp_path / "driver"
    returned = evaluate.run_here(_assignment("ok", "0", grant=20), node)
    assert returned.outcome["verdict"] == "ok", returned.outcome["evidence"]
    assert returned.outcome["budget"]["limit"] == 20  # the grant is the child's budget
    assert not returned.kept_on_node and not node.exists()  # nothing left on the node
    assert b"training done" in returned.files["stdout.log"]
    outcome = evaluate.receive(returned, LaunchFiles(driver / "attempt-1"))
    assert outcome.log_dir == str(driver / "attempt-1")
    assert (driver / "attempt-1" / "stdout.log").read_bytes() == returned.files["stdout.log"]
    written = json.loads((driver / "attempt-1" / "outcome.json").read_text())
    assert written["log_dir"] == str(driver / "attempt-1")
    assert str(node) not in (driver / "attempt-1" / "outcome.json").read_text()


def test_child_that_outgrows_its_grant_dies_alone(tmp_path):
    returned = evaluate.run_here(_assignment("threads", "50", grant=10), tmp_path)
    outcome = returned.outcome
    assert outcome["verdict"] == "thread_exhaustion", outcome["evidence"]
    assert outcome["exhausted"] == "pids cgroup (pids.max)"
    assert outcome["peak_threads"] >= 10  # the kernel's pids.peak, not a sample


def test_hang_on_the_node_comes_back_with_its_stacks(tmp_path):
    returned = evaluate.run_here(_assignment("sleep", "120", grant=20, stall_s=3), tmp_path)
    outcome = evaluate.receive(returned, LaunchFiles(tmp_path / "driver"))
    assert outcome.verdict == "hang", outcome.evidence
    assert outcome.stack_dump and outcome.stack_dump.startswith(str(tmp_path / "driver"))
    assert "sleep" in Path(outcome.stack_dump).read_text()


def test_big_logs_send_their_tail_and_stay_on_the_node(tmp_path):
    (tmp_path / "stdout.log").write_bytes(b"a" * 100 + b"b" * 50)
    (tmp_path / "events.jsonl").write_bytes(b"{}\n")
    packed, truncated = evaluate.pack(tmp_path, limit=50)
    assert truncated
    assert packed["events.jsonl"] == b"{}\n"
    head, tail = packed["stdout.log"].split(b"\n", 1)
    assert tail == b"b" * 50
    assert b"100 earlier bytes not sent" in head and str(tmp_path).encode() in head


def test_tails_are_named_in_the_drivers_outcome(tmp_path):
    returned = evaluate.run_here(_assignment("ok", "0", grant=20), tmp_path / "node")
    returned = dataclasses.replace(returned, kept_on_node=True)
    outcome = evaluate.receive(returned, LaunchFiles(tmp_path / "driver"))
    written = json.loads((tmp_path / "driver" / "outcome.json").read_text())
    assert written["evidence"] == outcome.evidence
    assert "whole files in" in outcome.evidence[-1]


def test_nodes_without_threads_or_dead_are_not_used():
    records = [
        {"Alive": True, "NodeManagerHostname": "a", "Resources": {"threads": 60.0, "CPU": 4.0}},
        {"Alive": False, "NodeManagerHostname": "b", "Resources": {"threads": 90.0}},
        {"Alive": True, "NodeManagerHostname": "c", "Resources": {"CPU": 8.0}},
    ]
    assert nodes_of(records) == [Node("a", 60, 4.0, 0.0)]


def test_cluster_refusals():
    nodes = [Node("a", 60, 4.0, 0.0)]
    with pytest.raises(InputError, match="declares a 'threads' resource"):
        check([], 0.0, 1.0, 0.0, "the cluster")
    with pytest.raises(InputError, match="2 GPUs but --gpus-per-eval is 0"):
        check([Node("g", 60, 4.0, 2.0)], 2.0, 1.0, 0.0, "the cluster")
    with pytest.raises(InputError, match="has 8 CPUs and 0 GPUs"):
        check(nodes, 0.0, 8.0, 0.0, "the cluster")
    check(nodes, 0.0, 1.0, 0.0, "the cluster")
    check([Node("g", 60, 4.0, 2.0)], 2.0, 1.0, 1.0, "the cluster")


def test_most_at_once():
    assert most_at_once([]) == 0
    assert most_at_once([(0, 2), (2, 4)]) == 1  # one ends as the next starts
    assert most_at_once([(0, 5), (1, 2), (1.5, 3), (4, 6)]) == 3


def test_node_resources_leave_room_for_ray_itself():
    offered = node_resources(node_cpus=2)["threads"]
    assert 0 < offered < headroom.tightest().headroom
    done = subprocess.run([sys.executable, "-m", "harness", "phase2", "node-resources"],
                          capture_output=True, text=True, check=True)
    assert set(json.loads(done.stdout)) == {"threads"}


def test_without_ray_one_line_and_exit_2(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from harness.cli.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "phase2", "run", "--executor", "ray",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ}, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "harness phase2 run: error: --executor ray needs Ray, an optional extra: "
        "pip install 'phase2-harness[ray]'"]
    assert not (tmp_path / "out").exists()


WHERE = {"node_id": "a" * 56, "address": "10.0.0.7", "host": "worker-7",
         "node_dir": "/tmp/harness-ray/run-key/attempt-1", "worker_pid": 4242}


def test_a_lost_node_or_worker_is_node_lost_with_the_node_as_evidence(tmp_path):
    import ray.exceptions

    from harness.phase2.executors.ray import nodes as ray_nodes

    for exc in (ray.exceptions.NodeDiedError("Task failed because the node it was running "
                                             "on is dead"), ray.exceptions.WorkerCrashedError()):
        outcome = ray_nodes.failed(LaunchFiles(tmp_path / type(exc).__name__), exc, WHERE)
        assert outcome.verdict == "node_lost"
        assert outcome.evidence[0].startswith(f"the Ray task failed: {type(exc).__name__}")
        assert "worker-7" in outcome.evidence[1] and "4242" in outcome.evidence[1]
        assert WHERE["node_dir"] in outcome.evidence[2]
        saved = json.loads((tmp_path / type(exc).__name__ / "outcome.json").read_text())
        assert saved["verdict"] == "node_lost"


def test_ray_killing_for_memory_is_the_evaluations_own_error(tmp_path):
    import ray.exceptions

    from harness.phase2.executors.ray import nodes as ray_nodes

    exc = ray.exceptions.OutOfMemoryError("Task was killed due to the node running low on "
                                          "memory.")
    outcome = ray_nodes.failed(LaunchFiles(tmp_path / "oom"), exc, None)
    assert outcome.verdict == "error"
    assert any("memory monitor" in e for e in outcome.evidence)
    assert any("never reported a node" in e for e in outcome.evidence)


def test_node_lost_is_retried_with_the_same_need():
    from harness.phase2.grid import Evaluation
    from harness.phase2.need.estimate import Need
    from harness.phase2.schedule.retry import RetryPolicy
    from harness.phase2.schedule.task import Attempt, Task
    from harness.verdict.outcome import Outcome

    policy, estimate = RetryPolicy(backoff_s=0.0), Need()
    estimate.seed(20, "this test")
    need = estimate.value
    task = Task(Evaluation(0, {"i": 0}), Command(("true",)), attempts=1)
    lost = Outcome.from_record({"method": "phase2", "condition": "c", "verdict": "node_lost",
                                "log_dir": ""})
    assert policy.settle(Attempt(task, lost, "worker-7 node aaaa"), estimate)
    assert estimate.value == need
    assert "node_lost on attempt 1 (worker-7 node aaaa)" in policy.log.decisions[-1]
    task.attempts = policy.max_attempts
    assert not policy.settle(Attempt(task, lost, "worker-7"), estimate)  # attempts run out
