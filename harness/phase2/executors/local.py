"""The local executor: evaluations as children of this host, in one launch group.

Admission control against the live budget headroom (the group's pids cgroup,
or the tightest limit of the host) and GPU memory: the first child starts alone
until its thread peak is measured at work_started, then more start while the
headroom, less what running children may still climb to, covers one more need.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.host import headroom, nvml
from harness.host.limits import Limits
from harness.launch.condition import Condition
from harness.launch.group import Launch, LaunchGroup
from harness.phase2.executors.base import Attempt, Executor
from harness.phase2.executors.gpu import GpuGate, auto_jobs, check_devices, min_gpu_memory
from harness.phase2.need.caps import cpus, thread_caps
from harness.phase2.need.estimate import EARLY_MARGIN
from harness.phase2.options import RunOptions
from harness.phase2.schedule import admission
from harness.phase2.schedule.loop import TICK_S
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task, attempt_dir
from harness.phase2.strategy import STRATEGIES, Strategy
from harness.supervise.supervisor import Watch
from harness.verdict.outcome import Outcome
from harness.workload import events as ev

HOST = socket.gethostname()


@dataclass
class _Running:
    task: Task
    watch: Watch
    alone: bool = True  # nothing else ran beside it at any time
    grant: int | None = None  # its own pids.max, where it has one
    basis: str = ""  # what the runner based that grant on
    exclusive: bool = False  # nothing starts beside it (it died within a guess before)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, group: LaunchGroup, strategy: Strategy, jobs: int | None,
                 policy: RetryPolicy, log_root: Path, gpu_gate: GpuGate) -> None:
        """jobs: the most children at once (None with admission "all": every task)."""
        super().__init__(policy)
        self.group, self.strategy, self.jobs = group, strategy, jobs
        self.log_root, self.gpu_gate = log_root, gpu_gate
        self.caps = thread_caps(cpus(), jobs or 1) if strategy.caps else {}
        if group.budget.limit is not None:
            self.headroom: Callable[[], int | None] = group.headroom
        else:
            self.headroom = lambda: headroom.tightest().headroom
        self._running: list[_Running] = []
        self.max_running = 0

    @classmethod
    def check(cls, opts: RunOptions) -> None:
        if opts.ray_address:
            raise InputError("--ray-address needs --executor ray")

    @classmethod
    @contextmanager
    def open(cls, opts: RunOptions, template: list[str], policy: RetryPolicy
             ) -> Iterator[LocalExecutor]:
        condition = Condition(name=f"phase2-{opts.strategy}",
                              limits=Limits(tasks=opts.tasks_budget), parent_tf=opts.parent_tf,
                              env=opts.env, unset=opts.unset)
        with nvml.Nvml.open() as handle:
            check_devices(handle, condition.parent_env())
        strategy = STRATEGIES[opts.strategy]
        with LaunchGroup(condition, opts.timeout_s, opts.stall_timeout_s, TICK_S) as group:
            min_gib = min_gpu_memory(template, opts.min_gpu_memory)
            cvd = condition.parent_env().get("CUDA_VISIBLE_DEVICES")
            jobs = opts.jobs
            if jobs is None and strategy.admission != "all":
                jobs, why = auto_jobs(nvml.visible(group.gpus, cvd), min_gib)
                policy.note(f"--jobs auto: {jobs} ({why})")
            gate = GpuGate(group.nvml, min_gib, cvd)
            yield cls(group, strategy, jobs, policy, Path(opts.out) / "evals", gate)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- admission ------------------------------------------------------------------

    def _admission(self, task: Task) -> tuple[bool, int | None]:
        """Whether this task starts now, and the grant (its own pids.max) it gets."""
        running = len(self._running)
        if self.strategy.admission == "all":
            return True, None
        if any(r.exclusive for r in self._running):
            return False, None
        most = 1 if self.strategy.admission == "one" else self.jobs
        assert most is not None  # jobs is None only with admission "all" (above)
        if running >= most:
            return False, None
        if task.guesses:  # it died within a guess: now it runs where nothing is guessed
            return not running, None
        ask = self.policy.ask()
        can_grant = self.group.budget.group is not None
        if not can_grant and self.policy.need.value is None:
            ask = None  # a prior needs grants to be safe: measure one child first
        if not running:
            return True, None  # alone is the best a child can get
        children = [admission.Child(r.grant, r.watch.threads_now, r.watch.obs.peak_threads)
                    for r in self._running]
        free = self.headroom()
        decision = admission.admit(children, ask, free, self._total(), can_grant)
        if decision is None:
            return False, None
        not_on_gpu = sum(r.watch.gpu.result.status != "observed" for r in self._running)
        ok, why = self.gpu_gate.allows(not_on_gpu)
        if not ok:
            self.policy.note(f"waiting: {why}")
            return False, None
        if decision.cap is not None and not self._cap_first(decision.cap):
            return False, None
        what = (f"a grant of {decision.grant} tasks ({self.policy.basis()})"
                if decision.grant is not None else f"need {ask}")
        self.policy.decide(f"admit #{running + 1}: headroom {free}, reserved for running "
                           f"children {decision.reserved}, {what}")
        return True, decision.grant

    def _cap_first(self, cap: int) -> bool:
        """The uncapped first child gets a grant of what the budget leaves beside the
        others' grants, so that no child can take another's share: one that outgrows its
        grant dies alone and is retried."""
        first = next(r for r in self._running if r.grant is None)
        if not self.group.grant(first.watch, cap):
            return False
        first.grant, first.basis = cap, f"its share beside {self.policy.basis()}"
        self.policy.decide(f"{first.task.evaluation.key}: capped at {cap} tasks so that "
                           "the next child cannot starve it")
        return True

    def _total(self) -> int:
        """The tasks this run's children may hold together: the budget, or without one
        the host's headroom plus what they hold now."""
        if self.group.budget.limit is not None:
            return self.group.budget.limit
        return (self.headroom() or 0) + sum(r.watch.threads_now for r in self._running)

    def room(self) -> int:
        if self.strategy.admission == "all":  # the field's Phase 2: everything at once
            return super().room()
        most = 1 if self.strategy.admission == "one" else (self.jobs or 1)
        return max(0, most - len(self._running))

    def start(self, ready: list[Task]) -> list[Task]:
        if self.strategy.admission == "all":  # the field's Phase 2: all together
            if ready:
                self._start(ready, None)
            return ready
        started = []
        for task in ready:
            ok, grant = self._admission(task)
            if not ok:
                break
            self._start([task], grant)
            started.append(task)
        return started

    def _start(self, tasks: list[Task], grant: int | None) -> None:
        for task in tasks:
            task.attempts += 1
        for task, watch in zip(tasks, self._launch(tasks, grant), strict=True):
            task.began()
            for other in self._running:
                other.alone = False
            basis = self.policy.basis() if grant is not None else ""
            self._running.append(_Running(task, watch, alone=not self._running, grant=grant,
                                          basis=basis, exclusive=bool(task.guesses)))
        self.max_running = max(self.max_running, len(self._running))

    def _launch(self, tasks: list[Task], grant: int | None) -> list[Watch]:
        """Start the tasks' children, each under its own grant where there is one."""
        return self.group.start([Launch(
            task.command, self.strategy.method,
            attempt_dir(self.log_root / task.evaluation.key, task.attempts), self.caps, grant,
            index=task.evaluation.index, condition=f"phase2-{self.strategy.name}")
            for task in tasks])

    # -- progress -------------------------------------------------------------------

    def poll(self, timeout_s: float) -> list[Attempt]:
        attempts = [self._ended(watch, outcome) for watch, outcome in self._wait(timeout_s)]
        self._learn_need()
        return attempts

    def _wait(self, timeout_s: float) -> list[tuple[Watch, Outcome]]:
        """Supervise for up to timeout_s; the launches that ended, with their outcomes."""
        return self.group.wait(timeout_s)

    def _ended(self, watch: Watch, outcome: Outcome) -> Attempt:
        run = next(r for r in self._running if r.watch is watch)
        self._running.remove(run)
        alone = run.alone and run.grant is None
        at_most = "it ran alone: one child does not fit this budget" if alone else None
        return Attempt(run.task, outcome, HOST, grant=run.grant, at_most=at_most,
                       basis=run.basis)

    def _learn_need(self) -> None:
        """The first child's peak once its device work has started (generous margin);
        the policy then learns from the peaks of children that complete."""
        for run in self._running:
            if self.policy.need.value is not None:
                return
            if self._work_started(run.watch):
                self.policy.measured(run.watch.obs.peak_threads, EARLY_MARGIN,
                                     "at work_started")

    @staticmethod
    def _work_started(watch: Watch) -> bool:
        return any(e["event"] == ev.WORK_STARTED for e in ev.read_events(watch.files.events))

    def stop(self, reason: str) -> None:
        self.group.interrupt(f"phase2 interrupted: {reason}")
        self._running.clear()

    def facts(self) -> dict:
        return {"executor": self.name, "cluster": None, "cpus": cpus(),
                "jobs": 1 if self.strategy.admission == "one" else (self.jobs or self.max_running),
                "max_running": self.max_running,
                "thread_caps": self.caps, "budget": self.group.budget.record()}


EXECUTOR = LocalExecutor
