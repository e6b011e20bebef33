"""Launch a group: K sibling launches of one command, one method, one condition, one budget.

command + method + condition -> (launching parents, ready, go) -> supervise ->
outcomes. Bad input raises LaunchInputError before anything starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness import envpolicy, limits, nvml, probes
from harness.command import Command, CommandError
from harness.condition import Condition
from harness.methods import CATALOGUE
from harness.outcome import Outcome, build
from harness.supervise import LAUNCH_MARKER_ENV, LaunchFiles, Watch, supervise

READY_TIMEOUT_S = 300.0  # parents importing/initialising TF on a loaded 2-core box
DEFAULT_TIMEOUT_S = 900.0
DEFAULT_STALL_TIMEOUT_S = 60.0


class LaunchInputError(ValueError):
    """Bad input; nothing was launched."""


@dataclass
class LaunchSpec:
    command: Command
    method: str
    condition: Condition = field(default_factory=Condition)
    log_dir: Path = Path("logs")
    timeout_s: float = DEFAULT_TIMEOUT_S
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    child_env: dict[str, str] = field(default_factory=dict)  # e.g. the runner's thread caps

    def effective_command(self) -> Command:
        flags = self.condition.workload_flags
        if flags and not self.command.is_reference:
            raise LaunchInputError(f"condition {self.condition.name!r} sets workload flags "
                                   f"{' '.join(flags)}; it applies to the reference workload "
                                   "only")
        return self.command.with_flags(flags) if flags else self.command


def validate(spec: LaunchSpec) -> Command:
    if spec.method not in CATALOGUE:
        raise LaunchInputError(f"unknown method {spec.method!r}: use one of "
                               f"{', '.join(CATALOGUE)}")
    if spec.timeout_s <= 0 or spec.stall_timeout_s <= 0:
        raise LaunchInputError("timeouts must be greater than zero")
    command = spec.effective_command()
    try:
        command.validate()
        spec.condition.child_ids()
    except (CommandError, ValueError) as exc:
        raise LaunchInputError(str(exc)) from None
    log_dir = Path(spec.log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LaunchInputError(f"bad log dir {str(log_dir)!r}: {exc.strerror}") from None
    if not os.access(log_dir, os.W_OK):
        raise LaunchInputError(f"bad log dir {str(log_dir)!r}: not writable")
    return command


def _launch_dirs(log_dir: Path, siblings: int) -> list[LaunchFiles]:
    if siblings == 1:
        return [LaunchFiles(log_dir)]
    return [LaunchFiles(log_dir / f"sibling-{i}") for i in range(siblings)]


@dataclass
class _Parent:
    files: LaunchFiles
    marker: str
    proc: subprocess.Popen
    ready_fd: int
    go: dict
    ready: bool = False


def _start_parent(spec: LaunchSpec, command: Command, files: LaunchFiles, marker: str,
                  budget: limits.Budget, user: tuple[int, int] | None) -> _Parent:
    files.dir.mkdir(parents=True, exist_ok=True)
    for stale in (files.events, files.metrics, files.stacks, files.parent_result,
                  files.outcome, files.stdout, files.stderr):
        stale.unlink(missing_ok=True)
    files.stdout.touch()
    files.stderr.touch()
    if user is not None:  # the child writes events/metrics here as another uid
        for path in (files.dir, files.stdout, files.stderr):
            os.chown(path, *user)
    child_env = {**command.env, **spec.child_env,
                 "HARNESS_EVENTS": str(files.events),
                 "HARNESS_METRICS_OUT": str(files.metrics),
                 "HARNESS_STACKS": str(files.stacks)}
    cond = spec.condition
    go = {
        "method": spec.method,
        "result": str(files.parent_result),
        "child": {
            "argv": list(command.argv), "cwd": command.cwd, "env": child_env,
            "stdout": str(files.stdout), "stderr": str(files.stderr),
            "workdir": str(files.dir),
            "group": str(budget.group.path) if budget.group else None,
            "rlimits": cond.limits.rlimits(), "user": list(user) if user else None,
        },
    }
    env = {k: v for k, v in os.environ.items() if k not in cond.unset}
    env.update({**cond.env, LAUNCH_MARKER_ENV: marker})
    read_fd, write_fd = os.pipe()
    boot = {"harness_pid": os.getpid(), "parent_tf": cond.parent_tf, "ready_fd": write_fd}
    (files.dir / "parent-spec.json").write_text(envpolicy.redact(json.dumps(
        {**boot, "go": go, "env_set": envpolicy.redact_mapping(cond.env),
         "env_unset": list(cond.unset)}, indent=2)))
    with open(files.parent_log, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.parent", json.dumps(boot)],
                                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
                                pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    return _Parent(files, marker, proc, read_fd, go)


def _wait_ready(parents: list[_Parent], deadline: float) -> None:
    pending = {p.ready_fd: p for p in parents}
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(list(pending), [], [], 0.5)
        for fd in readable:
            parent = pending.pop(fd)
            parent.ready = os.read(fd, 64).startswith(b"ready")
        for fd, parent in list(pending.items()):
            if parent.proc.poll() is not None:
                pending.pop(fd)
    for parent in parents:
        os.close(parent.ready_fd)


def _go(parents: list[_Parent], late_rlimits: dict[str, int]) -> None:
    """Release every ready parent at once (siblings start together)."""
    for parent in parents:
        parent.go["child"]["rlimits"].update(late_rlimits)
        line = (json.dumps(parent.go) + "\n").encode() if parent.ready else b"\n"
        with contextlib.suppress(BrokenPipeError):
            parent.proc.stdin.write(line)
            parent.proc.stdin.close()


def _late_rlimits(budget: limits.Budget, child_uid: int) -> dict[str, int]:
    """Known only once every parent is up: RLIMIT_NPROC = tasks the uid has + budget."""
    if budget.backend != "rlimit-nproc":
        return {}
    budget.nproc_base = limits.uid_tasks(child_uid)
    budget.notes.append(f"RLIMIT_NPROC = {budget.nproc_base} tasks uid {child_uid} already "
                        f"had + budget {budget.limit}")
    return {"nproc": budget.nproc_base + budget.limit}


def run(spec: LaunchSpec) -> list[Outcome]:
    """Launch spec.condition.siblings copies together and return one outcome each."""
    command = validate(spec)
    cond = spec.condition
    user = cond.child_ids()
    child_uid = user[0] if user else os.getuid()
    try:
        budget = limits.open_budget(cond.limits.tasks, child_uid, cond.budget_backend)
    except limits.BudgetError as exc:
        raise LaunchInputError(str(exc)) from None
    group_id = uuid.uuid4().hex[:8]
    parents: list[_Parent] = []
    watches: list[Watch] = []
    handle = nvml.Nvml.open()
    events_before = budget.group.events_max if budget.group else 0
    try:
        for i, files in enumerate(_launch_dirs(Path(spec.log_dir), cond.siblings)):
            marker = f"{os.getpid()}:{group_id}:{i}"
            parents.append(_start_parent(spec, command, files, marker, budget, user))
        _wait_ready(parents, time.monotonic() + READY_TIMEOUT_S)
        _go(parents, _late_rlimits(budget, child_uid))
        watches = [Watch(i, p.proc, p.files, p.marker, nvml.GpuWorkProbe(handle))
                   for i, p in enumerate(parents)]
        supervise(watches, budget.group, spec.timeout_s, spec.stall_timeout_s)
    finally:
        for parent in parents[len(watches):]:  # started but never supervised
            parent.proc.kill()
            parent.proc.wait()
        group_snapshot = budget.group.snapshot() if budget.group else None
        if budget.group:
            budget.group.kill_all()
            budget.group.remove()
        gpus = handle.gpus() if handle.available else []
        handle.close()
    events_delta = (group_snapshot or {}).get("events_max", 0) - events_before
    budget_record = {**budget.record(), "group_at_end": group_snapshot}
    outcomes = []
    for watch in watches:
        files = watch.files
        result = probes_result(files)
        seen = probes.observe(files.events, [files.stdout, files.stderr],
                              command.work_pattern, command.done_pattern)
        outcome = build(
            watch.obs, result, seen, method=spec.method, condition=cond.name,
            command=command.display(), budget=budget_record,
            limits=asdict(cond.limits), events_max_delta=events_delta,
            gpu_expected=bool(gpus),  # a GPU host: a run without GPU work is no_gpu_work
            metrics=probes.read_metrics(files.metrics))
        outcome.write(files.outcome)
        outcomes.append(outcome)
    return outcomes


def probes_result(files: LaunchFiles) -> dict | None:
    try:
        return json.loads(files.parent_result.read_text())
    except (OSError, ValueError):
        return None


def with_condition(spec: LaunchSpec, **changes) -> LaunchSpec:
    return replace(spec, condition=replace(spec.condition, **changes))
