"""Property tests of the runner's guesses: whatever the prior (tiny, huge, zero, negative,
stale), the true peaks and the budget, every evaluation whose child fits the budget alone
ends ok, no child dies of the shared budget, and none dies within more than one guessed
grant before its need is right.

The policy, the admission control, the local executor's scheduling and the Ray executor's
submissions are the real ones; only the children are simulated (threads over ticks, the
kernel's pids.max semantics of the launch cgroups and the budget), and, for Ray, the
cluster's resource queue. One real run of each executor is in tests/fixes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.launch.command import Command
from harness.phase2.executors.gpu import GpuGate
from harness.phase2.executors.local import LocalExecutor
from harness.phase2.executors.ray.cluster import Cluster, Node
from harness.phase2.executors.ray.evaluate import Returned
from harness.phase2.executors.ray.executor import RayExecutor
from harness.phase2.grid import Evaluation
from harness.phase2.need.caps import default_peak, thread_caps
from harness.phase2.need.estimate import EARLY_MARGIN, Need
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.loop import Hooks, Queue, schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task
from harness.phase2.strategy import STRATEGIES
from harness.verdict.outcome import Outcome

# -- simulated children ---------------------------------------------------------------

MAX_TICKS = 10_000


@dataclass(eq=False)
class Child:
    """A child over ticks: 1 task at start, `early` at work_started (tick 1), `peak` from
    tick 2, done after `ticks`. Its threads are refused beyond its own grant or beyond
    what the shared budget has left, as the kernel refuses them."""

    peak: int
    early: int
    ticks: int
    grant: int | None = None
    threads_now: int = 1
    age: int = 0
    verdict: str | None = None
    refused: int = 0
    shared_death: bool = False  # refused by the budget, not by its own grant
    obs: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(peak_threads=1))
    gpu: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(result=SimpleNamespace(status="observed")))

    def want(self) -> int:
        return self.early if self.age == 1 else self.peak if self.age >= 2 else 1

    def step(self, budget_left: int | None, beside_others: bool = False) -> None:
        """One tick: grow toward what it wants, or die of the first refusal."""
        self.age += 1
        if self.age > MAX_TICKS:
            raise AssertionError("a simulated child outlived any schedule")
        want = self.want()
        if self.grant is not None and want > self.grant:
            self.threads_now = self.grant
            self.verdict, self.refused = "thread_exhaustion", 1
        elif budget_left is not None and want - self.threads_now > budget_left:
            self.threads_now += max(0, budget_left)
            self.verdict, self.refused = "thread_exhaustion", 1
            self.shared_death = beside_others  # a neighbour's threads took what it needed
        else:
            self.threads_now = want
            if self.age >= self.ticks:
                self.verdict = "ok"
        self.obs.peak_threads = max(self.obs.peak_threads, self.threads_now)

    def outcome(self) -> Outcome:
        budget = {"refused_this_launch": self.refused, "launch_peak": self.obs.peak_threads}
        return Outcome.from_record({"method": "phase2", "condition": "sim",
                                    "verdict": self.verdict, "log_dir": "", "budget": budget,
                                    "peak_threads": self.obs.peak_threads})


class SimLauncher:
    """The local executor's Launcher (executors/launcher.py) over simulated children: the
    budget, grants, starting and supervising them tick by tick."""

    def __init__(self, budget: int, peaks: dict[str, tuple]) -> None:
        self.budget = SimpleNamespace(limit=budget, group=object(), record=dict)
        self.peaks = peaks
        self.children: list[Child] = []
        self.all: list[Child] = []

    def headroom(self) -> int:
        return self.budget.limit - sum(c.threads_now for c in self.children)

    def grant(self, child: Child, limit: int) -> bool:
        child.grant = limit
        return True

    def start(self, launches):
        made = [Child(*self.peaks[Path(launch.files.dir).parent.name], grant=launch.grant)
                for launch in launches]
        self.children += made
        self.all += made
        return made

    def wait(self, timeout_s):
        for child in list(self.children):
            others = sum(c.threads_now for c in self.children if c is not child)
            child.step(self.budget.limit - others - child.threads_now,
                       beside_others=len(self.children) > 1)
        ended = [c for c in self.children if c.verdict]
        for child in ended:
            self.children.remove(child)
        return [(child, child.outcome()) for child in ended]

    def interrupt(self, reason: str) -> None:
        self.children.clear()

    @staticmethod
    def work_started(child) -> bool:
        return child.age >= 1


def sim_local(budget: int, jobs: int, need: Need, log: DecisionLog, peaks: dict[str, tuple],
              tmp: Path) -> LocalExecutor:
    """The real local executor (admission, caps, retries through the policy) over
    simulated children instead of processes."""
    return LocalExecutor(SimLauncher(budget, peaks), STRATEGIES["runner"], jobs=jobs,
                         need=need, log=log, log_root=tmp,
                         gpu_gate=GpuGate(SimpleNamespace(available=False), 0.0))


# -- simulated Ray: nodes with `threads`, a FIFO of requests ----------------------------


@dataclass(eq=False)
class Ref:
    key: str
    grant: int
    child: Child | None = None
    node: int = -1


class SimRay:
    """Ray's resource queue: a task waits until a node has its `threads` free; there it
    runs in a pids cgroup of exactly its grant (evaluate.run_here), so it can only die of
    its own grant."""

    class exceptions:
        class RayError(Exception):
            pass

    def __init__(self, nodes: list[int], peaks: dict[str, tuple]) -> None:
        self.free, self.peaks = list(nodes), peaks
        self.queue: list[dict] = []
        self.running: list[dict] = []

    def remote(self, fn):
        ray = self

        class Remote:
            def options(self, resources, **_):
                self.grant = resources["threads"]
                return self

            def remote(self, assignment, *_):
                ref = Ref(assignment.key, self.grant)
                ray.queue.append(ref)
                return ref

        return Remote()

    def _admit(self) -> None:
        for ref in list(self.queue):
            node = next((i for i, f in enumerate(self.free) if f >= ref.grant), None)
            if node is None:
                break  # FIFO, like one Ray scheduling class
            self.free[node] -= ref.grant
            ref.node, ref.child = node, Child(*self.peaks[ref.key], grant=ref.grant)
            self.queue.remove(ref)
            self.running.append(ref)

    def wait(self, refs, num_returns=1, timeout=None):
        self._admit()
        for ref in self.running:
            ref.child.step(None)
        done = [r for r in refs if r.child is not None and r.child.verdict]
        for ref in done:
            self.running.remove(ref)
            self.free[ref.node] += ref.grant
        return done, [r for r in refs if r not in done]

    def get(self, ref):
        return Returned(ref.child.outcome().record(), {}, f"node-{ref.node}", "/nonexistent",
                        False, 0.0)

    def cancel(self, ref, force=False) -> None:
        pass


# -- the properties -----------------------------------------------------------------

PRIORS = st.one_of(st.none(), st.integers(-1000, 0), st.integers(1, 8),
                   st.integers(9, 400), st.integers(10**6, 10**9))
PEAK = st.integers(1, 120)


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 7))
    peaks = [draw(PEAK) for _ in range(n)]
    shape = [(p, draw(st.integers(max(1, int(p / EARLY_MARGIN)), p)),
              draw(st.integers(2, 6))) for p in peaks]
    return {"children": shape, "budget": draw(st.integers(4, 300)),
            "jobs": draw(st.integers(1, 4)), "cached": draw(PRIORS)}


def _policy(cached: int | None, caps: dict[str, str]) -> tuple[RetryPolicy, Need]:
    """The runner's own preparation: a peak of this command from before (here: any
    number a stale or tampered cache may hold), else the default prior."""
    policy, need = RetryPolicy(backoff_s=0.0), Need()
    policy.log.note(need.seed(cached, "the plan cache"))
    if need.value is None:
        policy.log.note(need.assume(default_peak(caps), "a default for a thread-capped TF child"))
    return policy, need


def _run(executor, policy: RetryPolicy, need: Need, tasks: list[Task]) -> dict[str, str]:
    finished: dict[str, str] = {}
    schedule(executor, Queue(tasks), lambda attempt: policy.settle(attempt, need),
             Hooks(finished=lambda a: finished.__setitem__(a.task.evaluation.key,
                                                           a.outcome.verdict)))
    return finished


def _tasks(children: list[tuple]) -> tuple[list[Task], dict[str, tuple]]:
    tasks = [Task(Evaluation(i, {"i": i}), Command(("sim",))) for i in range(len(children))]
    return tasks, {t.evaluation.key: c for t, c in zip(tasks, children, strict=True)}


def _check(tasks: list[Task], finished: dict, fits) -> None:
    for task in tasks:
        verdict = finished[task.evaluation.key]
        peak = task.evaluation.index
        assert len(task.guesses) <= 1, task.guesses  # at most one guess-death each
        assert task.spent <= RetryPolicy.max_attempts
        if fits(peak):
            assert verdict == "ok", (task.verdicts, task.guesses)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_local_guesses_never_cost_an_evaluation(case):
    tasks, peaks = _tasks(case["children"])
    caps = thread_caps(2, case["jobs"])
    policy, need = _policy(case["cached"], caps)
    with tempfile.TemporaryDirectory() as tmp:
        executor = sim_local(case["budget"], case["jobs"], need, policy.log, peaks, Path(tmp))
        finished = _run(executor, policy, need, tasks)
    launcher = executor.launcher
    assert isinstance(launcher, SimLauncher)
    assert not [c for c in launcher.all if c.shared_death], policy.log.decisions
    _check(tasks, finished, lambda i: case["children"][i][0] <= case["budget"])


@SETTINGS
@given(scenarios(), st.lists(st.integers(4, 200), min_size=1, max_size=4))
def test_ray_guesses_never_cost_an_evaluation(case, nodes):
    tasks, peaks = _tasks(case["children"])
    policy, need = _policy(case["cached"], thread_caps(1, 1))
    cluster = Cluster(None, [Node(f"n{i}", t, 4.0, 0.0) for i, t in enumerate(nodes)])
    with tempfile.TemporaryDirectory() as tmp:
        executor = RayExecutor(cluster, SimpleNamespace(
            out=tmp, cpus_per_eval=1, gpus_per_eval=0, timeout_s=60.0, stall_timeout_s=30.0,
            parent_tf="none", env={}, unset=(), log_cap_bytes=1 << 30), need, policy.log,
            ray=SimRay(nodes, peaks))
        finished = _run(executor, policy, need, tasks)
    _check(tasks, finished, lambda i: case["children"][i][0] <= max(nodes))
