"""Launch: command + method + condition -> one launch group -> outcomes.

`run()` validates a LaunchSpec, starts K identical siblings together in one
launch group (group.py), supervises them and returns one Outcome each. Bad
input raises InputError before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.launch.group import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S, Launch, LaunchGroup
from harness.launch.methods import CATALOGUE
from harness.supervise.files import MARKER, LaunchFiles
from harness.supervise.logcap import LOG_CAP_BYTES
from harness.verdict.outcome import Outcome

__all__ = [
    "DEFAULT_STALL_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "InputError",
    "LaunchGroup",
    "LaunchSpec",
    "run",
]


@dataclass
class LaunchSpec:
    command: Command
    method: str
    condition: Condition = field(default_factory=Condition)
    log_dir: Path = Path("logs")
    timeout_s: float = DEFAULT_TIMEOUT_S
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    child_env: dict[str, str] = field(default_factory=dict)  # e.g. the runner's thread caps
    force: bool = False  # empty a log dir the harness did not make
    calls: int | None = None  # in-parent: times the parent runs the command (None: default)
    log_cap_bytes: int = LOG_CAP_BYTES  # each launch's stdout/stderr on disk, at most


def effective_command(command: Command, condition: Condition) -> Command:
    flags = condition.workload_flags
    if flags and not command.is_reference:
        raise InputError(f"condition {condition.name!r} sets workload flags "
                         f"{' '.join(flags)}; it applies to the reference workload only")
    return command.with_flags(flags) if flags else command


def check_method(method: str) -> None:
    if method not in CATALOGUE:
        raise InputError(f"unknown method {method!r}: use one of {', '.join(CATALOGUE)}")


def check_command(command: Command) -> None:
    command.validate()


def check_calls(method: str, calls: int | None, command: Command, condition: Condition
                ) -> int:
    """How many calls an in-parent launch makes; --calls with another method, a count out
    of range, a command that is not Python or a --run-as are refused."""
    from harness.launch.command import python_target
    from harness.launch.inparent import DEFAULT_CALLS, MAX_CALLS

    if method != "in-parent":
        if calls is not None:
            raise InputError("--calls is for in-parent")
        return 1
    if calls is not None and not 1 <= calls <= MAX_CALLS:
        raise InputError(f"bad --calls {calls}: must be 1..{MAX_CALLS}")
    if python_target(command.argv) is None:
        raise InputError(f"in-parent runs a Python command in-process; {command.argv[0]!r} "
                         "is not a Python command (python -m MODULE, python SCRIPT.py)")
    if condition.run_as:
        raise InputError("--run-as is not for in-parent: the launching parent runs the "
                         "command itself and would give up its own privileges")
    return calls or DEFAULT_CALLS


def check_condition(condition: Condition) -> None:
    condition.child_ids()


def prepare_log_dir(log_dir: Path, force: bool = False) -> Path:
    """The log dir, made (and marked) by the harness: a directory of other files is
    refused before anything starts (launches empty theirs), unless forced."""
    marker = log_dir / MARKER
    if log_dir.is_symlink() or (log_dir.exists() and not log_dir.is_dir()):
        raise InputError(f"bad log dir {str(log_dir)!r}: not a directory")
    if log_dir.is_dir() and not force and not marker.exists() and any(log_dir.iterdir()):
        raise InputError(f"log dir {str(log_dir)!r} is not empty and was not made by the "
                         "harness: its files would be removed; choose another, or pass "
                         "--force to empty it")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as exc:
        raise InputError(f"bad log dir {str(log_dir)!r}: {exc.strerror}") from None
    if not os.access(log_dir, os.W_OK):
        raise InputError(f"bad log dir {str(log_dir)!r}: not writable")
    return log_dir


def launch_dirs(log_dir: Path, siblings: int) -> list[LaunchFiles]:
    if siblings == 1:
        return [LaunchFiles(log_dir)]
    return [LaunchFiles(log_dir / f"sibling-{i}") for i in range(siblings)]


def run(spec: LaunchSpec) -> list[Outcome]:
    """Start spec.condition.siblings identical launches together; one outcome each."""
    check_method(spec.method)
    command = effective_command(spec.command, spec.condition)
    check_command(command)
    check_condition(spec.condition)
    calls = check_calls(spec.method, spec.calls, command, spec.condition)
    prepare_log_dir(Path(spec.log_dir), spec.force)
    launches = [Launch(command, spec.method, files, spec.child_env, calls=calls)
                for files in launch_dirs(Path(spec.log_dir), spec.condition.siblings)]
    with LaunchGroup(spec.condition, spec.timeout_s, spec.stall_timeout_s,
                     log_cap_bytes=spec.log_cap_bytes) as group:
        return group.run(launches)
