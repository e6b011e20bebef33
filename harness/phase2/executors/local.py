"""The local executor: evaluations as children of this host, through one launcher (a
launch group; launcher.py).

Admission control against the live budget headroom (the group's pids cgroup, or the
tightest limit of the host) and GPU memory: the first child starts alone until its
thread peak is measured at work_started, then more start while the headroom, less what
running children may still climb to, covers one more need. What starts is decided by
schedule/admission.py's pure decide(); this module applies it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.host import nvml
from harness.launch.group import Launch, LaunchGroup
from harness.phase2.executors.base import Attempt, Executor, ExecutorFacts
from harness.phase2.executors.gpu import GpuGate, auto_jobs, check_devices, min_gpu_memory
from harness.phase2.executors.launcher import GroupLauncher, Launcher
from harness.phase2.layout import Layout
from harness.phase2.need.caps import cpus, thread_caps
from harness.phase2.need.estimate import EARLY_MARGIN, Need
from harness.phase2.options import TICK_S, RunOptions
from harness.phase2.schedule import admission
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.task import Task, attempt_dir
from harness.phase2.strategy import Admission, Strategy, strategy_of
from harness.supervise.supervisor import Watch
from harness.verdict.outcome import Outcome

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

    def __init__(self, launcher: Launcher, strategy: Strategy, *, jobs: int | None,
                 need: Need, log: DecisionLog, log_root: Path, gpu_gate: GpuGate) -> None:
        """jobs: the most children at once (None where the strategy starts every task)."""
        super().__init__(need, log)
        self.launcher, self.strategy, self.jobs = launcher, strategy, jobs
        self.log_root, self.gpu_gate = log_root, gpu_gate
        self.caps = thread_caps(cpus(), jobs or 1) if strategy.caps else {}
        self._running: list[_Running] = []
        self.max_running = 0

    @classmethod
    def check(cls, opts: RunOptions) -> None:
        if opts.ray_address:
            raise InputError("--ray-address needs --executor ray")

    @classmethod
    @contextmanager
    def open(cls, opts: RunOptions, template: list[str], need: Need, log: DecisionLog
             ) -> Iterator[LocalExecutor]:
        condition = opts.condition(f"phase2-{opts.strategy}", opts.tasks_budget)
        with nvml.Nvml.open() as handle:
            check_devices(handle, condition.parent_env())
        strategy = strategy_of(opts.strategy)
        with LaunchGroup(condition, opts.timeout_s, opts.stall_timeout_s, TICK_S,
                         log_cap_bytes=opts.log_cap_bytes) as group:
            min_gib = min_gpu_memory(template, opts.min_gpu_memory)
            cvd = condition.parent_env().get("CUDA_VISIBLE_DEVICES")
            jobs = opts.jobs
            if jobs is None and not strategy.all_at_once:
                jobs, why = auto_jobs(nvml.visible(group.gpus, cvd), min_gib)
                log.note(f"--jobs auto: {jobs} ({why})")
            gate = GpuGate(group.nvml, min_gib, cvd)
            yield cls(GroupLauncher(group), strategy, jobs=jobs, need=need, log=log,
                      log_root=Layout(Path(opts.out)).evals, gpu_gate=gate)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- admission ------------------------------------------------------------------

    def _scene(self, task: Task) -> admission.Scene:
        """What admission decides on, as the launcher reports it now."""
        free = self.launcher.headroom()
        budget = self.launcher.budget
        total = budget.limit if budget.limit is not None else (free or 0) + sum(
            r.watch.threads_now for r in self._running)
        return admission.Scene(
            running=[admission.Child(r.grant, r.watch.threads_now, r.watch.obs.peak_threads)
                     for r in self._running],
            most=self.strategy.admission.most(self.jobs),
            exclusive=any(r.exclusive for r in self._running), after_guess=bool(task.guesses),
            ask=self.need.ask(), need_known=self.need.value is not None,
            need_confirmed=self.need.confirmed, free=free,
            total=total, can_grant=budget.group is not None)

    def _apply(self, decision: admission.Admit | admission.Wait, scene: admission.Scene
               ) -> bool:
        """Carry out an admission: the GPU gate, capping the first child, the decision in
        the log. False where the task does not start now after all."""
        if isinstance(decision, admission.Wait):
            return False
        if not self._running:
            return True
        not_on_gpu = sum(r.watch.gpu.result.status != "observed" for r in self._running)
        ok, why = self.gpu_gate.allows(not_on_gpu)
        if not ok:
            self.log.note(f"waiting: {why}")
            return False
        if decision.cap is not None and not self._cap_first(decision.cap):
            return False
        shared = (f", and half of what the budget leaves over two asks of {scene.usable_ask}"
                  if (decision.grant or 0) > (scene.usable_ask or 0) else "")
        what = (f"a grant of {decision.grant} tasks ({self.need.basis()}{shared})"
                if decision.grant is not None else f"need {scene.usable_ask}")
        self.log.decide(f"admit #{len(self._running) + 1}: headroom {scene.free}, reserved "
                        f"for running children {decision.reserved}, {what}")
        return True

    def _cap_first(self, cap: int) -> bool:
        """The uncapped first child gets a grant of what the budget leaves beside the
        others' grants, so that no child can take another's share: one that outgrows its
        grant dies alone and is retried."""
        first = next(r for r in self._running if r.grant is None)
        if not self.launcher.grant(first.watch, cap):
            return False
        first.grant, first.basis = cap, f"its share beside {self.need.basis()}"
        self.log.decide(f"{first.task.evaluation.key}: capped at {cap} tasks so that "
                        "the next child cannot starve it")
        return True

    def room(self) -> int:
        most = self.strategy.admission.most(self.jobs or 1)
        if most is None:  # the field's Phase 2: everything at once
            return super().room()
        return max(0, most - len(self._running))

    def start(self, ready: list[Task]) -> list[Task]:
        if self.strategy.all_at_once:  # the field's Phase 2: all together
            if ready:
                self._start(ready, None)
            return ready
        started = []
        for task in ready:
            scene = self._scene(task)
            decision = admission.decide(scene)
            if not self._apply(decision, scene):
                break
            assert isinstance(decision, admission.Admit)
            self._start([task], decision.grant)
            started.append(task)
        return started

    def _start(self, tasks: list[Task], grant: int | None) -> None:
        for task in tasks:
            task.attempts += 1
        watches = self.launcher.start([Launch(
            task.command, self.strategy.method,
            attempt_dir(self.log_root / task.evaluation.key, task.attempts), self.caps, grant,
            index=task.evaluation.index, condition=f"phase2-{self.strategy.name}")
            for task in tasks])
        for task, watch in zip(tasks, watches, strict=True):
            task.began()
            for other in self._running:
                other.alone = False
            basis = self.need.basis() if grant is not None else ""
            self._running.append(_Running(task, watch, alone=not self._running, grant=grant,
                                          basis=basis, exclusive=bool(task.guesses)))
        self.max_running = max(self.max_running, len(self._running))

    # -- progress -------------------------------------------------------------------

    def poll(self, timeout_s: float) -> list[Attempt]:
        attempts = [self._ended(watch, outcome)
                    for watch, outcome in self.launcher.wait(timeout_s)]
        self._learn_need()
        return attempts

    def _ended(self, watch: Watch, outcome: Outcome) -> Attempt:
        run = next(r for r in self._running if r.watch is watch)
        self._running.remove(run)
        alone = run.alone and run.grant is None
        at_most = "it ran alone: one child does not fit this budget" if alone else None
        return Attempt(run.task, outcome, HOST, grant=run.grant, at_most=at_most,
                       basis=run.basis)

    def _learn_need(self) -> None:
        """The first child's peak once its device work has started (generous margin);
        the need then learns from the peaks of children that complete."""
        for run in self._running:
            if self.need.value is not None:
                return
            if self.launcher.work_started(run.watch):
                self.log.note(self.need.measured(run.watch.obs.peak_threads, EARLY_MARGIN,
                                                 "at work_started"))

    def stop(self, reason: str) -> None:
        self.launcher.interrupt(f"phase2 interrupted: {reason}")
        self._running.clear()

    def cancel(self, task: Task, reason: str) -> bool:
        run = next((r for r in self._running if r.task is task), None)
        return run is not None and self.launcher.stop(run.watch, reason)

    def events_of(self, task: Task) -> Path | None:
        run = next((r for r in self._running if r.task is task), None)
        return run.watch.files.events if run else None

    def facts(self) -> ExecutorFacts:
        jobs = 1 if self.strategy.admission is Admission.ONE else (
            self.jobs or self.max_running)
        return ExecutorFacts(executor=self.name, cluster=None, cpus=cpus(), jobs=jobs,
                             max_running=self.max_running, thread_caps=self.caps,
                             budget=self.launcher.budget.record())


EXECUTOR = LocalExecutor
