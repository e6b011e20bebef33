"""A Ray cluster for Phase 2: join one or start one here, read its nodes' `threads`, and
refuse a cluster that cannot run the grid as asked.

The mapping from budgets to Ray resources:
- a node declares the tasks (threads) its evaluation children may use as the custom
  resource `threads`: `ray start --resources "$(harness phase2 node-resources)"`. A
  cluster this run starts itself gets --tasks-budget, or the live headroom less Ray's own;
- an evaluation requests its measured per-child need in `threads`, plus --cpus-per-eval
  and --gpus-per-eval; Ray starts it only where that much is free (ray_executor.py).

Ray is imported only here and in ray_executor.py, and only for --executor ray.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from harness.errors import InputError
from harness.host import headroom
from harness.phase2.need.caps import cpus

RESOURCE = "threads"
# Ray's own tasks on a node, measured with psutil for ray 2.60 on a 2-core host:
# gcs_server 26, raylet 28, monitor 17, dashboard 16, log_monitor 15, two agents 32
# (134 in all), and 22-23 for each worker process (Ray pre-starts one per CPU).
RAY_DAEMON_TASKS = 160
RAY_WORKER_TASKS = 25
OBJECT_STORE_BYTES = 200 << 20  # results and log files only
def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray, an optional extra: "
                               "pip install 'phase2-harness[ray]'") from None
    return ray


def node_resources(node_cpus: int | None = None) -> dict[str, int]:
    """The `threads` this node can offer evaluation children: the live task headroom less
    what Ray's own processes will take once started."""
    reserve = RAY_DAEMON_TASKS + RAY_WORKER_TASKS * (node_cpus or cpus())
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
        raise InputError(
            f"no node of {where} declares a '{RESOURCE}' resource, so none can run an "
            f"evaluation: start nodes with ray start --resources "
            f"\"$(harness phase2 node-resources)\"")
    if all_gpus and not gpus_per_eval:
        raise InputError(
            f"{where} has {all_gpus:g} GPUs but --gpus-per-eval is 0: every evaluation "
            "would train on CPU without an error; pass --gpus-per-eval")
    if not any(n.cpus >= cpus_per_eval and n.gpus >= gpus_per_eval for n in cluster_nodes):
        raise InputError(
            f"no node of {where} with '{RESOURCE}' has {cpus_per_eval:g} CPUs and "
            f"{gpus_per_eval:g} GPUs for one evaluation (--cpus-per-eval/--gpus-per-eval)")


def check_address(address: str | None, tasks_budget: int | None) -> None:
    """Everything about --ray-address that can be refused before Ray is imported (1.5 s)."""
    if address and tasks_budget is not None:
        raise InputError("--tasks-budget sets the budget of a cluster this run starts; "
                               "nodes at --ray-address declare theirs (ray start --resources)")
    if address:
        check_reachable(address)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast where nothing listens: ray.init retries a dead GCS address for minutes."""
    if address == "auto" or "://" in address:  # Ray resolves these itself, quickly
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"bad --ray-address {address!r}: expected HOST:PORT, auto or "
                               "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InputError(f"cannot use the Ray cluster at {address}: nothing answers "
                               f"there ({exc.strerror or exc})") from None


@contextmanager
def connect(address: str | None, tasks_budget: int | None, cpus_per_eval: float,
            gpus_per_eval: float) -> Iterator[Cluster]:
    """Join the cluster at address, or start one on this host for this run only."""
    check_address(address, tasks_budget)
    ray = import_ray()
    where = f"the Ray cluster at {address}" if address else "the local Ray cluster"
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        init: dict[str, object] = {"address": address}
    else:
        threads = tasks_budget if tasks_budget is not None else node_resources()[RESOURCE]
        init = {"address": "local", "num_cpus": cpus(), "resources": {RESOURCE: threads},
                "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES}
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(**init, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        raise InputError(f"cannot use {where}: {_root_cause(exc)}") from None
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
