"""Phase 2 on Ray: Ray's scheduler does the admission control across the cluster, and
every node runs its evaluations the local runner's way (evaluate.run_here).

The mapping from budgets to Ray resources:
- a node declares the tasks (threads) its evaluation children may use as the custom
  resource `threads`: `ray start --resources "$(harness phase2 node-resources)"`. A
  cluster this run starts itself gets --tasks-budget, or the live headroom less Ray's own;
- an evaluation requests its measured per-child need in `threads`, plus --cpus-per-eval
  and --gpus-per-eval; Ray starts it only where that much is free;
- on the node the child runs in a pids cgroup of exactly its grant, so a child that
  outgrows its request dies alone (thread_exhaustion) and is retried with a bigger one.

Until a per-child peak is known (OUT/plan.json or finished evaluations), the first
evaluation runs alone with a whole node's `threads`; its peak sets the need.
"""

from __future__ import annotations

import logging
import signal
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import cgroup, headroom
from harness.launch import LaunchInputError
from harness.outcome import Outcome
from harness.phase2 import evaluate
from harness.phase2 import planning as plans
from harness.phase2.schedule import MAX_ATTEMPTS, TICK_S, Task, attempt_dir
from harness.supervise import LaunchFiles

if TYPE_CHECKING:
    from harness.phase2.runner import RunOptions

RESOURCE = "threads"
# Ray's own tasks on a node, measured with psutil for ray 2.60 on a 2-core host:
# gcs_server 26, raylet 28, monitor 17, dashboard 16, log_monitor 15, two agents 32
# (134 in all), and 22-23 for each worker process (Ray pre-starts one per CPU).
RAY_DAEMON_TASKS = 160
RAY_WORKER_TASKS = 25
OBJECT_STORE_BYTES = 200 << 20  # results and log files only
CANCEL_GRACE_S = 10.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise LaunchInputError("--executor ray needs Ray, an optional extra: "
                               "pip install 'phase2-harness[ray]'") from None
    return ray


def node_resources(cpus: int | None = None) -> dict[str, int]:
    """The `threads` this node can offer evaluation children: the live task headroom less
    what Ray's own processes will take once started."""
    reserve = RAY_DAEMON_TASKS + RAY_WORKER_TASKS * (cpus or plans.cpus())
    return {RESOURCE: max(0, headroom.tightest().headroom - reserve)}


@dataclass(frozen=True)
class Node:
    name: str
    threads: int
    cpus: float
    gpus: float


@dataclass
class Cluster:
    address: str | None  # None: started by this run, stopped at its end
    nodes: list[Node]

    @property
    def largest(self) -> int:
        return max(n.threads for n in self.nodes)

    def record(self) -> dict:
        return {"address": self.address, "started_here": self.address is None,
                "resource": RESOURCE, "nodes": [asdict(n) for n in self.nodes]}


def nodes_of(ray_nodes: list[dict]) -> list[Node]:
    """Alive nodes that declare `threads` (ray.nodes() records)."""
    found = []
    for n in ray_nodes:
        resources = n.get("Resources", {})
        if n.get("Alive") and resources.get(RESOURCE):
            found.append(Node(n.get("NodeManagerHostname") or n.get("NodeManagerAddress", "?"),
                              int(resources[RESOURCE]), resources.get("CPU", 0.0),
                              resources.get("GPU", 0.0)))
    return found


def check(cluster_nodes: list[Node], all_gpus: float, cpus_per_eval: float,
          gpus_per_eval: float, where: str) -> None:
    """Refuse a cluster that cannot run the grid as asked, before anything launches."""
    if not cluster_nodes:
        raise LaunchInputError(
            f"no node of {where} declares a '{RESOURCE}' resource, so none can run an "
            f"evaluation: start nodes with ray start --resources "
            f"\"$(harness phase2 node-resources)\"")
    if all_gpus and not gpus_per_eval:
        raise LaunchInputError(
            f"{where} has {all_gpus:g} GPUs but --gpus-per-eval is 0: every evaluation "
            "would train on CPU without an error; pass --gpus-per-eval")
    if not any(n.cpus >= cpus_per_eval and n.gpus >= gpus_per_eval for n in cluster_nodes):
        raise LaunchInputError(
            f"no node of {where} with '{RESOURCE}' has {cpus_per_eval:g} CPUs and "
            f"{gpus_per_eval:g} GPUs for one evaluation (--cpus-per-eval/--gpus-per-eval)")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast where nothing listens: ray.init retries a dead GCS address for minutes."""
    if address == "auto" or "://" in address:  # Ray resolves these itself, quickly
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LaunchInputError(f"bad --ray-address {address!r}: expected HOST:PORT, auto or "
                               "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise LaunchInputError(f"cannot use the Ray cluster at {address}: nothing answers "
                               f"there ({exc.strerror or exc})") from None


@contextmanager
def connect(address: str | None, tasks_budget: int | None, cpus_per_eval: float,
            gpus_per_eval: float) -> Iterator[Cluster]:
    """Join the cluster at address, or start one on this host for this run only."""
    ray = import_ray()
    if address and tasks_budget is not None:
        raise LaunchInputError("--tasks-budget sets the budget of a cluster this run starts; "
                               "nodes at --ray-address declare theirs (ray start --resources)")
    where = f"the Ray cluster at {address}" if address else "the local Ray cluster"
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        check_reachable(address)
        init = {"address": address}
    else:
        threads = tasks_budget if tasks_budget is not None else node_resources()[RESOURCE]
        init = {"address": "local", "num_cpus": plans.cpus(), "resources": {RESOURCE: threads},
                "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES}
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(**init, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        raise LaunchInputError(f"cannot use {where}: {_root_cause(exc)}") from None
    finally:  # Ray's core worker installs its own; ours stop the run cleanly
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    try:
        nodes = nodes_of(ray.nodes())
        check(nodes, ray.cluster_resources().get("GPU", 0.0), cpus_per_eval, gpus_per_eval,
              where)
        yield Cluster(address, [n for n in nodes  # those that can take one evaluation
                                if n.cpus >= cpus_per_eval and n.gpus >= gpus_per_eval])
    finally:
        ray.shutdown()


def _root_cause(exc: BaseException) -> str:
    """The first line of the error, and of the deepest error behind it (e.g. the
    AuthenticationError behind Ray's "Failed to connect")."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if root is exc or not str(root).strip():
        return first
    return f"{first} ({str(root).strip().splitlines()[0][:300]})"


def _on_node(assignment: evaluate.Assignment, run_id: str) -> evaluate.Returned:
    """The Ray task: node-local files under the node's temp dir, sent back at the end."""
    return evaluate.run_here(assignment, Path(tempfile.gettempdir()) / "harness-ray"
                             / f"{run_id}-{assignment.key}")


def _failed(dest: LaunchFiles, exc: Exception) -> Outcome:
    """The outcome of an attempt whose Ray task itself failed (worker or node lost)."""
    dest.dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(method=evaluate.METHOD, condition="phase2-ray", sibling=0,
                      verdict="error", exit_code=None, signal=None, work_started=None,
                      completed=None, gpu_work={}, peak_threads=0, peak_rss=0, duration_s=0.0,
                      orphans=0, stragglers=[], budget={}, exhausted=None, stderr_tail="",
                      log_dir=str(dest.dir),
                      evidence=[f"the Ray task failed: {str(exc).splitlines()[0]}"])
    outcome.write(dest.outcome)
    return outcome


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        best = max(best, now)
    return best


class Driver:
    """Submits attempts with their `threads` requests, receives them, retries, records."""

    def __init__(self, cluster: Cluster, opts: RunOptions, caps: dict[str, str],
                 log_root: Path, finish: Callable[[Task, Outcome, str], None],
                 on_attempt: Callable[[Task, Outcome], None]) -> None:
        self.ray = import_ray()
        self.cluster, self.opts, self.caps = cluster, opts, caps
        self.need = plans.Need()
        self.log_root, self.finish, self.on_attempt = log_root, finish, on_attempt
        self.remote = self.ray.remote(_on_node)
        self.run_id = uuid.uuid4().hex[:12]
        self.running: dict = {}  # ObjectRef -> (task, grant)
        self.intervals: list[tuple[float, float]] = []
        self.decisions: list[str] = []
        self.interrupted: str | None = None

    def _submit(self, task: Task, grant: int) -> None:
        task.attempts += 1
        assignment = evaluate.Assignment(
            task.evaluation.key, task.attempts, task.command, self.caps, grant,
            self.opts.timeout_s, self.opts.stall_timeout_s, self.opts.parent_tf,
            dict(self.opts.env), tuple(self.opts.unset))
        ref = self.remote.options(
            num_cpus=self.opts.cpus_per_eval, num_gpus=self.opts.gpus_per_eval,
            resources={RESOURCE: grant}, max_retries=0).remote(assignment, self.run_id)
        self.running[ref] = (task, grant)

    def _grant(self) -> int:
        return min(self.need.value or self.cluster.largest, self.cluster.largest)

    def _receive(self, ref) -> tuple[Outcome, str]:
        task, _ = self.running[ref]
        dest = attempt_dir(self.log_root / task.evaluation.key, task.attempts)
        try:
            returned = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            return _failed(dest, exc), "?"
        outcome = evaluate.receive(returned, dest)
        task.started_at = returned.started_at
        self.intervals.append((returned.started_at, returned.started_at + outcome.duration_s))
        return outcome, returned.node

    def _done(self, ref, queue: list[Task]) -> None:
        outcome, node = self._receive(ref)
        task, grant = self.running.pop(ref)
        task.verdicts.append(outcome.verdict)
        self.on_attempt(task, outcome)
        if outcome.verdict == "ok":
            measured = self.need.value is None
            self.need.completed(outcome.peak_threads)
            if measured:
                self.decisions.append(f"measured {outcome.peak_threads} threads on {node}: "
                                      f"per-child need {self.need.value}")
        elif outcome.verdict == "thread_exhaustion":
            if grant < self.cluster.largest and task.attempts < MAX_ATTEMPTS:
                self.need.bump(max(grant, outcome.peak_threads), cap=self.cluster.largest)
                self.decisions.append(f"{task.evaluation.key}: thread_exhaustion within its "
                                      f"grant of {grant}; retry, per-child need now "
                                      f"{self.need.value}")
                queue.append(task)
                return
            if grant >= self.cluster.largest:
                outcome.evidence.append(f"it had the largest node's {grant} {RESOURCE}: "
                                        "it does not fit any node of this cluster")
        self.finish(task, outcome, node)

    def run(self, todo: list[Task]) -> None:
        queue = list(todo)
        try:
            while queue or self.running:
                if self.need.value is not None:
                    for task in queue:
                        self._submit(task, self._grant())
                    queue.clear()
                elif not self.running and queue:  # measure one child on a node of its own
                    self._submit(queue.pop(0), self.cluster.largest)
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=TICK_S)
                for ref in ready:
                    self._done(ref, queue)
        except KeyboardInterrupt as exc:
            self.interrupted = str(exc) or "KeyboardInterrupt"
            self._cancel()

    def _cancel(self) -> None:
        """KeyboardInterrupt in each task, so its launch group kills the child, removes the
        cgroup and sends the files back; a task still there after the grace is killed
        with its worker (the child dies with it, pdeathsig; its cgroup and files stay on
        the node, the cgroup until the next launch group there)."""
        refs = list(self.running)
        if not refs:
            return
        for ref in refs:
            self.ray.cancel(ref, force=False)
        stopped, left = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in stopped:  # logs into OUT; not finished, so --resume runs it again
            self._receive(ref)
        for ref in left:
            self.ray.cancel(ref, force=True)
        cgroup.reap_stale()  # this host's share of what force-killed workers left

    def extras(self) -> dict:
        total = sum(n.threads for n in self.cluster.nodes)
        return {"executor": "ray", "cluster": self.cluster.record(), "jobs": None,
                "max_running": most_at_once(self.intervals), "per_child_need": self.need.value,
                "thread_caps": self.caps,
                "budget": {"backend": f"ray resource '{RESOURCE}'", "limit": total,
                           "per_node": {n.name: n.threads for n in self.cluster.nodes}},
                "decisions": self.decisions, "interrupted": self.interrupted}
