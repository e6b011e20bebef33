"""Run one cell of the reproduction matrix: siblings through one method under one
condition, or, for the phase2 column, through the Phase 2 runner's own scheduling
(admission control is what the runner adds to a sibling group)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.launch import spec as launch
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.launch.group import LaunchGroup
from harness.phase2.executors.base import Attempt
from harness.phase2.executors.gpu import GpuGate
from harness.phase2.executors.launcher import GroupLauncher
from harness.phase2.executors.local import LocalExecutor
from harness.phase2.grid import Evaluation
from harness.phase2.need.caps import cpus
from harness.phase2.need.estimate import Need
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.loop import Hooks, Queue, schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task
from harness.phase2.strategy import STRATEGIES
from harness.verdict.outcome import Outcome


def run_cell(command: Command, condition: Condition, method: str, log_dir: Path,
             timeout_s: float, stall_timeout_s: float) -> list[Outcome]:
    """One outcome per sibling of the cell (condition x method)."""
    if method == "phase2":
        return run_copies(command, condition, log_dir, timeout_s, stall_timeout_s)
    if method == "in-parent":  # Solution B: one process runs every evaluation in turn
        condition = dataclasses.replace(condition, siblings=1)
    spec = launch.LaunchSpec(command, method, condition, log_dir, timeout_s, stall_timeout_s)
    return launch.run(spec)


def run_copies(command: Command, condition: Condition, log_dir: Path, timeout_s: float,
               stall_timeout_s: float) -> list[Outcome]:
    """condition.siblings copies of one command through the runner strategy, in the
    condition's launch group (same budget, admission control added)."""
    command = launch.effective_command(command, condition)
    launch.check_command(command)
    launch.prepare_log_dir(Path(log_dir))
    outcomes: dict[int, Outcome] = {}

    def finish(attempt: Attempt) -> None:
        outcomes[attempt.task.evaluation.index] = attempt.outcome

    need, log = Need(), DecisionLog()
    policy = RetryPolicy(log=log)
    tasks = [Task(Evaluation(i, {"copy": i}), command) for i in range(condition.siblings)]
    with LaunchGroup(condition, timeout_s, stall_timeout_s) as group:
        executor = LocalExecutor(GroupLauncher(group), STRATEGIES["runner"], jobs=cpus(),
                                 need=need, log=log, log_root=Path(log_dir),
                                 gpu_gate=GpuGate(group.nvml, 0.0))
        schedule(executor, Queue(tasks), lambda attempt: policy.settle(attempt, need),
                 Hooks(finished=finish))
    return [outcomes[i] for i in sorted(outcomes)]
