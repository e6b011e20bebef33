"""Phase 2 on Ray: Ray's scheduler does the admission control across the cluster, and
every node runs its evaluations the local runner's way (evaluate.run_here).

Each evaluation requests its measured per-child need in the custom resource `threads`
(ray_cluster.py declares and reads it), and on the node the child runs in a pids
cgroup of exactly its grant, so a child that outgrows its request dies alone
(thread_exhaustion) and the policy retries it with a bigger one. Until a per-child
peak is known (OUT/plan.json, finished evaluations, the plan cache), evaluations ask
for the policy's prior; without one, the first runs alone with a whole node's
`threads` and its peak sets the need. A task whose node or worker dies comes back as
node_lost, with the node its task reported to the tracker (ray_nodes.py), and runs again.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import InputError
from harness.phase2.executors.base import Attempt, Executor, ExecutorFacts
from harness.phase2.executors.ray import evaluate, live
from harness.phase2.executors.ray import nodes as ray_nodes
from harness.phase2.executors.ray.cluster import (
    RESOURCE,
    Cluster,
    check_address,
    connect,
    import_ray,
)
from harness.phase2.layout import Layout
from harness.phase2.need.caps import thread_caps
from harness.phase2.need.estimate import Need
from harness.phase2.options import RunOptions
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.task import Task, attempt_dir
from harness.phase2.strategy import strategy_of
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict

CANCEL_GRACE_S = 10.0
KEPT_INTERVALS = 4096


def _id(task: Task) -> tuple[str, int]:
    return task.evaluation.key, task.attempts


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        best = max(best, now)
    return best


class RayExecutor(Executor):
    """Submits attempts with their `threads` requests, receives them back."""

    name = "ray"

    def __init__(self, cluster: Cluster, opts: RunOptions, need: Need, log: DecisionLog,
                 ray=None) -> None:
        """ray: the module (tests pass a stand-in with the same calls; without actors or
        nodes, so no tracker and no node-side reaping)."""
        super().__init__(need, log)
        self.real = ray is None
        self.ray = ray or import_ray()
        self.tracker = ray_nodes.tracker(self.ray) if self.real else None
        self.cluster, self.opts = cluster, opts
        self.caps = thread_caps(max(1, int(opts.cpus_per_eval)), 1)
        self.log_root = Layout(Path(opts.out)).evals
        need.cap = cluster.largest  # no grant can be bigger than the largest node
        self.remote = self.ray.remote(ray_nodes.on_node)
        self.run_id = uuid.uuid4().hex[:12]
        self._refs: dict = {}  # ObjectRef -> (task, grant, what the grant is based on)
        # What running attempts' nodes pushed of their events (live.py): the Pool reads a
        # spool file as it reads a local child's events.
        self.spool = live.Spool(self._take, Layout(Path(opts.out)).live) \
            if self.tracker is not None else None
        self.intervals: list[tuple[float, float]] = []  # the recent ones: see _ran()
        self._most = 0

    @classmethod
    def check(cls, opts: RunOptions) -> None:
        if not strategy_of(opts.strategy).measures:
            raise InputError("--executor ray runs the runner strategy, not "
                                   f"{opts.strategy!r}")
        if opts.jobs is not None:
            raise InputError("--jobs is for the local executor: on Ray, the nodes' "
                                   "resources decide how many run at once")
        if opts.cpus_per_eval <= 0 or opts.gpus_per_eval < 0:
            raise InputError("--cpus-per-eval must be > 0 and --gpus-per-eval >= 0")
        check_address(opts.ray_address, opts.tasks_budget)  # before the 1.5 s import
        import_ray()

    @classmethod
    @contextmanager
    def open(cls, opts: RunOptions, template: list[str], need: Need, log: DecisionLog
             ) -> Iterator[RayExecutor]:
        with connect(opts.ray_address, opts.tasks_budget, opts.cpus_per_eval,
                     opts.gpus_per_eval) as cluster:
            executor = cls(cluster, opts, need, log)
            try:
                executor.reap("left by an earlier driver")  # e.g. one killed with SIGKILL
                yield executor
            finally:
                if executor.spool is not None:
                    executor.spool.close()

    @property
    def running(self) -> int:
        return len(self._refs)

    def room(self) -> int:
        """Twice what the nodes hold at the current ask: Ray's own queue stays fed, and the
        driver holds no more refs than that, however large the grid."""
        grant = min(self.need.ask() or self.cluster.largest, self.cluster.largest)
        holds = sum(max(1, n.threads // grant) for n in self.cluster.nodes)
        return max(0, 2 * holds - len(self._refs))

    def start(self, ready: list[Task]) -> list[Task]:
        largest = self.cluster.largest
        # A task that died within a guess runs on a node of its own: nothing is guessed.
        started = [t for t in ready if t.guesses]
        for task in started:
            self._submit(task, largest)
        ready = [t for t in ready if not t.guesses]
        ask = self.need.ask()
        if self.need.value is not None:  # Ray queues them until `threads` are free
            assert ask is not None  # ask() is the need once one is known
            for task in ready:
                self._submit(task, min(ask, largest))
            return started + ready
        if ask is not None:
            # Before a need is known: as many as the nodes hold at the prior (each its
            # grant: a child that outgrows it dies alone and is retried); the rest wait
            # for the need, not in Ray's queue with a request too big for them.
            grant = min(ask, largest)
            fits = max(1, sum(n.threads // grant for n in self.cluster.nodes))
            more = ready[:max(0, fits - len(self._refs))]
            for task in more:
                self._submit(task, grant)
            return started + more
        if ready and not any(g >= largest for _, g, _ in self._refs.values()):
            self._submit(ready[0], largest)  # measure one child on a node of its own
            return [*started, ready[0]]
        return started

    def _submit(self, task: Task, grant: int) -> None:
        task.attempts += 1
        opts = self.opts
        assignment = evaluate.Assignment(
            task.evaluation.key, task.attempts, task.command, self.caps, grant,
            opts.timeout_s, opts.stall_timeout_s, opts.parent_tf, dict(opts.env),
            tuple(opts.unset), opts.log_cap_bytes)
        ref = self.remote.options(
            num_cpus=opts.cpus_per_eval, num_gpus=opts.gpus_per_eval,
            resources={RESOURCE: grant}, max_retries=0).remote(assignment, self.run_id,
                                                               self.tracker)
        self._refs[ref] = (task, grant, self.need.basis())

    def poll(self, timeout_s: float) -> list[Attempt]:
        if not self._refs:  # a retry waiting out its back-off
            time.sleep(timeout_s)
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        if self.spool is not None:
            with contextlib.suppress(self.ray.exceptions.RayError):  # busy: next poll
                self.spool.pull([_id(t) for t, _, _ in self._refs.values()],
                                [_id(self._refs[ref][0]) for ref in ready])
        return [self._ended(ref) for ref in ready]

    def _take(self, running: live.Ids, ended: live.Ids) -> dict[tuple[str, int], bytes]:
        assert self.tracker is not None  # a spool is made only where there is one
        return self.ray.get(self.tracker.take.remote(running, ended),
                            timeout=ray_nodes.LOOKUP_TIMEOUT_S)

    def events_of(self, task: Task) -> Path | None:
        """The spool of a running attempt's events, as far as its node pushed them."""
        if self.spool is None or not any(t is task for t, _, _ in self._refs.values()):
            return None
        return self.spool.path(*_id(task))

    def events_after(self, attempt: Attempt) -> Path:
        """A followed attempt's spool (the offsets its reader holds are into it), until the
        next poll; else the events file that came back with it."""
        if self.spool is not None and (path := self.spool.path(*_id(attempt.task))).exists():
            return path
        return super().events_after(attempt)

    def _receive(self, ref) -> tuple[Outcome, str]:
        task = self._refs[ref][0]
        dest = attempt_dir(self.log_root / task.evaluation.key, task.attempts)
        try:
            returned = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            where = self._where(task)
            outcome = ray_nodes.failed(dest, exc, where)
            if outcome.verdict == Verdict.NODE_LOST:
                self.reap(f"after {task.evaluation.key} attempt {task.attempts} was lost")
            node = f"{where['host']} node {where['node_id'][:8]}" if where else "?"
            return outcome, node
        outcome = evaluate.receive(returned, dest)
        task.began(returned.started_at)
        self._ran(returned.started_at, returned.started_at + outcome.duration_s)
        return outcome, returned.node

    def _where(self, task: Task) -> dict | None:
        """Where this attempt ran, as its task told the tracker (None: never started)."""
        if self.tracker is None:
            return None
        try:
            return self.ray.get(self.tracker.lookup.remote(task.evaluation.key, task.attempts),
                                timeout=ray_nodes.LOOKUP_TIMEOUT_S)
        except self.ray.exceptions.RayError:
            return None

    def _ran(self, start: float, end: float) -> None:
        """One more attempt's interval. Past KEPT_INTERVALS the most that overlapped so far
        is kept and only the latest intervals stay: an attempt overlaps the ones that ended
        near it, and the driver's memory stays flat however large the grid."""
        self.intervals.append((start, end))
        if len(self.intervals) > KEPT_INTERVALS:
            self._most = max(self._most, most_at_once(self.intervals))
            self.intervals = self.intervals[-KEPT_INTERVALS // 4:]

    def reap(self, why: str) -> None:
        """The node-side reaper on every alive node: process trees and pids cgroups of
        workers that are gone are removed there, now."""
        if not self.real:
            return
        for node, removed in ray_nodes.reap(self.ray, ray_nodes.alive_ids(self.ray)).items():
            if removed:
                self.log.note(f"reaped {len(removed)} pids cgroup(s) {why} on node "
                                 f"{node[:8]}: {', '.join(removed)}")

    def _ended(self, ref) -> Attempt:
        outcome, node = self._receive(ref)
        task, grant, basis = self._refs.pop(ref)
        largest = self.cluster.largest
        at_most = (f"it had the largest node's {grant} {RESOURCE}: it does not fit any node "
                   "of this cluster") if grant >= largest else None
        return Attempt(task, outcome, node, grant=grant, at_most=at_most, basis=basis)

    def cancel(self, task: Task, reason: str) -> bool:
        """KeyboardInterrupt in its Ray task: its launch group kills the child, removes the
        cgroup and sends the files back; poll() reports it as it ended."""
        ref = next((r for r, (t, _, _) in self._refs.items() if t is task), None)
        if ref is None:
            return False
        self.ray.cancel(ref, force=False)
        return True

    def stop(self, reason: str) -> None:
        """KeyboardInterrupt in each task, so its launch group kills the child, removes the
        cgroup and sends the files back; a task still there after the grace is killed
        with its worker (the child dies with it, pdeathsig), and the node-side reaper
        removes its cgroup on its node at once (its files stay there)."""
        refs = list(self._refs)
        if not refs:
            return
        for ref in refs:
            self.ray.cancel(ref, force=False)
        stopped, left = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in stopped:  # logs into OUT; not finished, so --resume runs it again
            task = self._refs[ref][0]
            if self.tracker is not None and self._where(task) is None:
                continue  # cancelled while queued in Ray: it never ran, no attempt to keep
            self._receive(ref)
        for ref in left:
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        if left:
            self.reap("after force-cancelled attempts")

    def facts(self) -> ExecutorFacts:
        total = sum(n.threads for n in self.cluster.nodes)
        return ExecutorFacts(
            executor=self.name, cluster=self.cluster.record(), jobs=None,
            cpus=int(sum(n.cpus for n in self.cluster.nodes)),
            max_running=max(self._most, most_at_once(self.intervals)),
            thread_caps=self.caps,
            budget={"backend": f"ray resource '{RESOURCE}'", "limit": total,
                    "per_node": {n.name: n.threads for n in self.cluster.nodes}})


EXECUTOR = RayExecutor
