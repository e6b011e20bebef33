"""What the Ray executor knows about nodes: the task each attempt is on its node
(on_node), where each attempt runs (a tracker actor the tasks report to as they start,
and push their events to), what a failed Ray task means (node_lost when its node or
worker died, not the evaluation's fault), and the node-side reaper that removes what
killed workers leave (process trees, pids cgroups) on their own node at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
from pathlib import Path

from harness.host import cgroup
from harness.phase2.executors.ray import evaluate
from harness.phase2.executors.ray.live import Ids, Received
from harness.phase2.schedule.task import attempt_path
from harness.supervise.files import LaunchFiles
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict

# A worker or a whole node died under the task: the evaluation is not to blame.
LOST = ("NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "OwnerDiedError",
        "ObjectLostError", "ActorDiedError")
REAP_TIMEOUT_S = 30.0
LOOKUP_TIMEOUT_S = 5.0


class Tracker:
    """Where each attempt started: (key, attempt) -> node, address, node-side log dir;
    and the events its node pushes while it runs (live.py). A Ray actor of the
    driver's (it dies with it)."""

    def __init__(self) -> None:
        self.where: dict[tuple[str, int], dict] = {}
        self.live = Received()

    def started(self, key: str, attempt: int, where: dict) -> None:
        self.where[(key, attempt)] = where

    def lookup(self, key: str, attempt: int) -> dict | None:
        return self.where.get((key, attempt))

    def append(self, key: str, attempt: int, offset: int, data: bytes) -> None:
        self.live.append(key, attempt, offset, data)

    def take(self, running: Ids, ended: Ids) -> dict[tuple[str, int], bytes]:
        return self.live.take(running, ended)


def tracker(ray):
    """A Tracker on the driver's own node: a lost worker node must not take it along."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return ray.remote(Tracker).options(num_cpus=0, scheduling_strategy=(
        NodeAffinitySchedulingStrategy(node, soft=False))).remote()


def on_node(assignment: evaluate.Assignment, run_id: str, tracker=None
             ) -> evaluate.Returned:
    """The Ray task: node-local files under the node's temp dir, sent back at the end;
    first it tells the driver's tracker where it runs (if it dies, the driver knows)."""
    workdir = Path(tempfile.gettempdir()) / "harness-ray" / f"{run_id}-{assignment.key}"
    # ray.cancel() stops a task by simulating SIGINT in its thread, which does nothing
    # where SIGINT is ignored (a cluster started under nohup or as a background job):
    # then only force-killing is left, and the attempt's logs stay on the node.
    with contextlib.suppress(ValueError):  # only in the main thread, where Ray runs tasks
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if tracker is None:
        return evaluate.run_here(assignment, workdir)
    import ray

    where = here(ray, str(attempt_path(workdir, assignment.attempt)))
    tracker.started.remote(assignment.key, assignment.attempt, where)

    def forward(offset: int, data: bytes, last: bool) -> None:
        pushed = tracker.append.remote(assignment.key, assignment.attempt, offset, data)
        if last:  # in the tracker before this task returns: the driver reads it all
            ray.get(pushed, timeout=LOOKUP_TIMEOUT_S)

    return evaluate.run_here(assignment, workdir, forward)


def here(ray, node_dir: str) -> dict:
    """This node, as a task running on it sees it."""
    return {"node_id": ray.get_runtime_context().get_node_id(),
            "address": ray.util.get_node_ip_address(), "host": socket.gethostname(),
            "node_dir": node_dir, "worker_pid": os.getpid()}


def failed(dest: LaunchFiles, exc: Exception, where: dict | None) -> Outcome:
    """The outcome of an attempt whose Ray task itself failed: node_lost (retried
    elsewhere) when its node or worker died, else error; the node and Ray's error are
    the evidence, and what the node still held is named."""
    kind = type(exc).__name__
    first = (str(exc).strip().splitlines() or [kind])[0][:300]
    evidence = [f"the Ray task failed: {kind}: {first}"]
    lost = kind in LOST or any(c.__name__ in LOST for c in type(exc).__mro__)
    if where:
        evidence.append(f"it ran on node {where['node_id'][:16]} ({where['address']}, "
                        f"{where['host']}), worker pid {where['worker_pid']}")
        evidence.append(f"not sent back: its logs stay on that node in {where['node_dir']}"
                        + (" (gone with the node if the node is)" if lost else ""))
    else:
        evidence.append("the task never reported a node: it died before it started")
    if kind == "OutOfMemoryError":
        evidence.append("Ray's memory monitor killed the worker: the evaluation's own "
                        "memory, so it is not retried")
    dest.dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome.from_record({
        "method": "phase2", "condition": "phase2-ray",
        "verdict": Verdict.NODE_LOST if lost else Verdict.ERROR,
        "log_dir": str(dest.dir), "evidence": evidence})
    outcome.save(dest)
    return outcome


def _reap() -> list[str]:
    """On one node: remove the pids cgroups (and kill what is inside) of launch groups
    whose creating worker is gone."""
    return [str(p) for p in cgroup.reap_stale()]


def reap(ray, node_ids: list[str]) -> dict[str, list[str]]:
    """Run the reaper on each of these (alive) nodes now; node id -> what it removed."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(_reap)
    refs = {n: task.options(num_cpus=0, max_retries=0, scheduling_strategy=(
        NodeAffinitySchedulingStrategy(n, soft=False))).remote() for n in node_ids}
    done: dict[str, list[str]] = {}
    for node, ref in refs.items():
        try:
            done[node] = ray.get(ref, timeout=REAP_TIMEOUT_S)
        except ray.exceptions.RayError:  # the node died meanwhile: nothing left to reap
            done[node] = []
    return done


def alive_ids(ray) -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
