"""Scheduling: start evaluations as the strategy allows, supervise them, retry, record.

Strategies:
- runner: the fix. phase2 launches (spawn-like exec, allow-listed env, thread caps,
  files, new session, die with the parent); admission control against the live
  budget headroom and GPU memory; retries with back-off for thread_exhaustion only.
- naive: the field's Phase 2. subprocess.run(capture_output=True), all at once.
- sequential: the "works in my terminal" baseline. One at a time, no caps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import nvml
from harness.command import Command
from harness.launch import LaunchGroup
from harness.outcome import Outcome
from harness.phase2 import planning as plan
from harness.phase2.grid import Evaluation
from harness.supervise import LaunchFiles, Watch
from harness.workload import events as ev

TICK_S = 0.25  # the runner samples less often than the repro harness: it needs peaks of
# long-lived TF pools, not of every transient thread, and its children need the CPU
RETRY_BACKOFF_S = 1.0  # doubles per attempt
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Strategy:
    name: str
    method: str
    caps: bool
    admission: str  # "budget" | "all" | "one"
    retries: bool


STRATEGIES = {s.name: s for s in (
    Strategy("runner", "phase2", caps=True, admission="budget", retries=True),
    Strategy("naive", "subprocess-pipes", caps=False, admission="all", retries=False),
    Strategy("sequential", "subprocess-pipes", caps=False, admission="one", retries=False),
)}


@dataclass
class Task:
    """One evaluation across its attempts."""

    evaluation: Evaluation
    command: Command
    attempts: int = 0
    not_before: float = 0.0
    verdicts: list[str] = field(default_factory=list)
    ran_alone: bool = True
    watch: Watch | None = None
    started_at: float = 0.0


class GpuGate:
    """Admit a child only while every GPU it will use keeps --min-gpu-memory free, counting
    children that were admitted but have not allocated yet."""

    def __init__(self, handle: nvml.Nvml, min_free_gib: float) -> None:
        self.handle, self.min_free_gib = handle, min_free_gib

    def allows(self, not_yet_on_gpu: int) -> tuple[bool, str]:
        if not self.handle.available or self.min_free_gib <= 0:
            return True, ""
        gpus = nvml.visible(self.handle.gpus(), os.environ.get("CUDA_VISIBLE_DEVICES"))
        reserve = not_yet_on_gpu * self.min_free_gib * nvml.GIB
        short = [g.index for g in gpus
                 if g.memory_free - reserve < self.min_free_gib * nvml.GIB]
        return (not short), (f"GPUs {short} would drop below {self.min_free_gib} GiB free"
                             if short else "")


class Scheduler:
    def __init__(self, group: LaunchGroup, strategy: Strategy, jobs: int,
                 headroom: Callable[[], int | None], gpu_gate: GpuGate, log_root: Path,
                 on_finish: Callable[[Task, Outcome], None],
                 on_attempt: Callable[[Task, Outcome], None] | None = None,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.group, self.strategy, self.jobs = group, strategy, jobs
        self.headroom, self.gpu_gate, self.log_root = headroom, gpu_gate, log_root
        self.on_finish, self.on_attempt = on_finish, on_attempt
        self.max_attempts = max_attempts if strategy.retries else 1
        self.need = plan.Need()  # per-child task need, once measured
        self.caps = plan.thread_caps(plan.cpus(), jobs) if strategy.caps else {}
        self.running: list[Task] = []
        self.interrupted: str | None = None
        self.max_running = 0
        self.decisions: list[str] = []

    # -- admission ------------------------------------------------------------------

    def _admits(self) -> bool:
        running = len(self.running)
        if self.strategy.admission == "all":
            return True
        if running >= (1 if self.strategy.admission == "one" else self.jobs):
            return False
        if not running:
            return True  # alone is the best a child can get; if that fails, it is final
        need = self.need.value
        if need is None:
            return False  # the first child is still being measured
        free = self.headroom()
        # A running child may climb back to its own peak or the per-child need, whichever
        # is higher (TF drops and re-creates tf.data threads between folds).
        reserved = sum(max(0, max(need, t.watch.obs.peak_threads) - t.watch.threads_now)
                       for t in self.running)
        if free is not None and free - reserved < need:
            return False
        not_on_gpu = sum(t.watch.gpu.result.status != "observed" for t in self.running)
        ok, why = self.gpu_gate.allows(not_on_gpu)
        if not ok:
            self._note(f"waiting: {why}")
        else:
            self.decisions.append(f"admit #{running + 1}: headroom {free}, reserved for "
                                  f"running children {reserved}, need {need}")
        return ok

    def _note(self, decision: str) -> None:
        if not self.decisions or self.decisions[-1] != decision:
            self.decisions.append(decision)

    def _learn_need(self) -> None:
        """Per-child need from a measured peak: the first child once its device work has
        started (generous margin), then the peaks of children that complete."""
        for task in self.running:
            watch = task.watch
            if self.need.value is None and _work_started(watch.files):
                self.need.value = plan.need_from_peak(watch.obs.peak_threads, plan.EARLY_MARGIN)
                self.decisions.append(f"measured {watch.obs.peak_threads} threads at "
                                      f"work_started: per-child need {self.need.value}")

    # -- lifecycle ------------------------------------------------------------------

    def _start(self, tasks: list[Task]) -> None:
        pendings = []
        for task in tasks:
            task.attempts += 1
            files = attempt_dir(self.log_root / task.evaluation.key, task.attempts)
            pendings.append(self.group.prepare(task.command, self.strategy.method, files,
                                               self.caps))
        for task, watch in zip(tasks, self.group.release(pendings), strict=True):
            task.watch = watch
            task.started_at = time.time()
            task.ran_alone = not self.running
            for other in self.running:
                other.ran_alone = False
            self.running.append(task)
        self.max_running = max(self.max_running, len(self.running))

    def _finished(self, task: Task, queue: list[Task]) -> None:
        self.running.remove(task)
        outcome = self.group.outcome(task.watch, condition_name=f"phase2-{self.strategy.name}")
        task.verdicts.append(outcome.verdict)
        if outcome.verdict == "ok":
            self.need.completed(outcome.peak_threads)
        if self.on_attempt:
            self.on_attempt(task, outcome)
        retry = (outcome.verdict == "thread_exhaustion" and task.attempts < self.max_attempts
                 and not task.ran_alone)
        if retry:
            self.need.bump(self.need.value or outcome.peak_threads or 1)
            task.not_before = time.monotonic() + RETRY_BACKOFF_S * 2 ** (task.attempts - 1)
            self.decisions.append(f"{task.evaluation.key}: thread_exhaustion on attempt "
                                  f"{task.attempts}; retry, per-child need now {self.need.value}")
            queue.append(task)
            return
        if outcome.verdict == "thread_exhaustion" and task.ran_alone:
            outcome.evidence.append("it ran alone: one child does not fit this budget")
        self.on_finish(task, outcome)

    def run(self, tasks: list[Task]) -> None:
        queue = list(tasks)
        try:
            if self.strategy.admission == "all" and queue:
                self._start(queue)
                queue.clear()
            while queue or self.running:
                for watch in self.group.supervisor.tick():
                    task = next(t for t in self.running if t.watch is watch)
                    self._finished(task, queue)
                self._learn_need()
                now = time.monotonic()
                ready = [t for t in queue if t.not_before <= now]
                while ready and self._admits():
                    task = ready.pop(0)
                    queue.remove(task)
                    self._start([task])
                if queue or self.running:
                    self.group.supervisor.wait(TICK_S)
        except KeyboardInterrupt as exc:
            self.interrupted = str(exc) or "KeyboardInterrupt"
            self.group.supervisor.interrupt(f"phase2 interrupted: {self.interrupted}")


def attempt_dir(root: Path, attempt: int) -> LaunchFiles:
    """attempt-N, skipping dirs a killed earlier run left (their logs are evidence)."""
    n = attempt
    while (root / f"attempt-{n}").exists():
        n += 1
    return LaunchFiles(root / f"attempt-{n}")


def _work_started(files: LaunchFiles) -> bool:
    return any(e["event"] == ev.WORK_STARTED for e in ev.read_events(files.events))
