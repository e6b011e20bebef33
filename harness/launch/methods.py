"""The invocation-method catalogue: how a Python parent starts the training command.

Each method is one small function run inside the launching parent. They share
one input (`Child`) and one result type (`MethodResult`) and know nothing about
verdicts. Output always ends up in the child's log files: inherited file
descriptors for the shell/mp methods, files passed directly for env-isolated
and phase2, and captured bytes written out afterwards for the pipe methods.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from harness import envpolicy, untrusted
from harness.host import limits
from harness.launch.command import PythonTarget, python_target


@dataclass
class Child:
    """What the launching parent starts, under which limits, writing where."""

    argv: list[str]
    cwd: str | None
    env: dict[str, str]  # launcher-injected (HARNESS_*) plus the command's own additions
    stdout: str
    stderr: str
    workdir: str  # the launch's log dir, for helper files
    group: str | None = None  # pids cgroup to join
    rlimits: dict[str, int] = field(default_factory=dict)
    user: tuple[int, int] | None = None
    calls: int = 1  # in-parent: how many times the parent runs the command itself

    def __post_init__(self) -> None:
        if self.user is not None:  # arrives as a JSON list
            self.user = (int(self.user[0]), int(self.user[1]))

    @property
    def limited(self) -> bool:
        return bool(self.group or self.rlimits or self.user)

    def prefix(self, pdeathsig_parent: int | None = None) -> list[str]:
        if not self.limited and pdeathsig_parent is None:
            return []
        return limits.trampoline_argv(group=self.group, rlimits=self.rlimits, user=self.user,
                                      pdeathsig_parent=pdeathsig_parent,
                                      chdir=self.cwd if self.user else None)


@dataclass
class MethodResult:
    returncode: int | None = None  # as the method reports it: exit code, or -N for signal N
    via_shell: bool = False  # a shell reports a child killed by signal N as 128+N
    launch_error: str | None = None
    detail: dict = field(default_factory=dict)

    def record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    run: Callable[[Child], MethodResult]
    python_only: bool = False
    # The harness can start it itself when the parent state is "no TF" (no extra process).
    direct: bool = False
    pdeathsig: bool = False
    # The launching parent does the work itself (no child): it joins the launch's cgroup
    # and its own process is the launch's root.
    in_process: bool = False


def _inherited_env(child: Child) -> dict[str, str]:
    return {**os.environ, **child.env}


def _write_captured(child: Child, out: bytes | None, err: bytes | None) -> None:
    for path, data in ((child.stdout, out), (child.stderr, err)):
        with untrusted.append_or_discard(path) as f:
            f.write(data or b"")


@contextmanager
def _output_to_logs(child: Child) -> Iterator[None]:
    """Point fds 1/2 at the child's log files for methods whose child inherits them."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with untrusted.append_or_discard(child.stdout) as out, \
            untrusted.append_or_discard(child.stderr) as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def subprocess_pipes(child: Child) -> MethodResult:
    """subprocess.run(capture_output=True): the field's Phase 2 call."""
    done = subprocess.run([*child.prefix(), *child.argv], cwd=child.cwd,
                          env=_inherited_env(child), capture_output=True, check=False)
    _write_captured(child, done.stdout, done.stderr)
    return MethodResult(done.returncode)


def popen_wait(child: Child) -> MethodResult:
    """Popen(stdout=PIPE, stderr=PIPE).wait(), then read: deadlocks past the pipe buffer."""
    proc = subprocess.Popen([*child.prefix(), *child.argv], cwd=child.cwd,
                            env=_inherited_env(child), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    returncode = proc.wait()
    assert proc.stdout is not None and proc.stderr is not None  # both PIPE
    _write_captured(child, proc.stdout.read(), proc.stderr.read())
    proc.stdout.close()
    proc.stderr.close()
    return MethodResult(returncode, detail={"pid": proc.pid})


def os_system(child: Child) -> MethodResult:
    """os.system(cmdline): the report's "Solution A"; returns a wait status."""
    os.environ.update(child.env)
    if child.cwd:
        os.chdir(child.cwd)
    with _output_to_logs(child):
        status = os.system(shlex.join([*child.prefix(), *child.argv]))
    return MethodResult(os.waitstatus_to_exitcode(status), via_shell=True,
                        detail={"wait_status": status})


def shell(child: Child) -> MethodResult:
    """subprocess.run(cmdline, shell=True), output inherited."""
    with _output_to_logs(child):
        done = subprocess.run(shlex.join([*child.prefix(), *child.argv]), shell=True,
                              cwd=child.cwd, env=_inherited_env(child), check=False)
    return MethodResult(done.returncode, via_shell=True)


def run_python_in_process(target: PythonTarget, cwd: str | None, env: dict[str, str],
                          fork_limits: dict | None) -> None:
    """Body of an mp child: run the command's module or script with its argv, in-process."""
    import runpy

    os.environ.update(env)
    if fork_limits:  # fork has no exec to hang a trampoline on
        limits.apply(fork_limits["group"], fork_limits["rlimits"], fork_limits["user"])
    if cwd:  # after the uid change: entered with the child's own permissions
        os.chdir(cwd)
    sys.argv = [target.name, *target.args]
    if target.kind == "module":
        runpy.run_module(target.name, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(target.name)))
        runpy.run_path(target.name, run_name="__main__")


def _spawn_executable(child: Child) -> str:
    """A wrapper `python` that runs the real one under the trampoline (spawn execs it)."""
    script = Path(child.workdir) / "python-under-limits.sh"
    with os.fdopen(untrusted.create_exclusive(script, 0o755), "w") as f:
        f.write("#!/bin/sh\nexec " + shlex.join([*child.prefix(), sys.executable]) + ' "$@"\n')
    return str(script)


def _multiprocessing(child: Child, start_method: Literal["spawn", "fork"]) -> MethodResult:
    target = python_target(tuple(child.argv))
    if target is None:
        return MethodResult(launch_error=f"mp-{start_method} runs a Python command in-process; "
                                         f"{child.argv[0]!r} is not a Python command")
    import multiprocessing  # only the mp methods pay for it

    # One literal per call: typeshed gives each its own context type (they have .Process).
    ctx = (multiprocessing.get_context("spawn") if start_method == "spawn"
           else multiprocessing.get_context("fork"))
    fork_limits = None
    if start_method == "spawn" and child.limited:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()  # keep the tracker itself out of the budget
        ctx.set_executable(_spawn_executable(child))
    elif child.limited:
        fork_limits = {"group": child.group, "rlimits": child.rlimits, "user": child.user}
    with _output_to_logs(child):
        proc = ctx.Process(target=run_python_in_process,
                           args=(target, child.cwd, child.env, fork_limits))
        proc.start()
        proc.join()
    return MethodResult(proc.exitcode, detail={"pid": proc.pid, "start_method": start_method})


def mp_spawn(child: Child) -> MethodResult:
    """multiprocessing 'spawn' Process running the command in-process: "Solution D"."""
    return _multiprocessing(child, "spawn")


def mp_fork(child: Child) -> MethodResult:
    """multiprocessing 'fork' Process: inherits the parent's TF state (and its locks)."""
    return _multiprocessing(child, "fork")


def start_isolated(child: Child, parent_env: dict[str, str], pdeathsig: bool
                   ) -> subprocess.Popen:
    """Start (not wait for) an env-isolated child; the harness itself may be its parent."""
    env = envpolicy.isolated(parent_env, child.env)
    with untrusted.append_or_discard(child.stdout) as out, \
            untrusted.append_or_discard(child.stderr) as err:
        return subprocess.Popen(
            [*child.prefix(os.getpid() if pdeathsig else None), *child.argv], cwd=child.cwd,
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)


def _isolated(child: Child, pdeathsig: bool) -> MethodResult:
    proc = start_isolated(child, dict(os.environ), pdeathsig)
    return MethodResult(proc.wait(), detail={"pid": proc.pid})


def env_isolated(child: Child) -> MethodResult:
    """Allow-listed env, output to files, new session: the report's isolation done right."""
    return _isolated(child, pdeathsig=False)


def phase2(child: Child) -> MethodResult:
    """The runner's launch: env-isolated plus thread caps and death with the parent."""
    return _isolated(child, pdeathsig=True)


def in_parent(child: Child) -> MethodResult:
    """The launching parent runs the command's module or script itself, child.calls times
    (the incident's Solution B); output to the logs, each call's state to calls.jsonl."""
    from harness.launch.inparent import run_calls

    target = python_target(tuple(child.argv))
    if target is None:  # refused at validation; a spec written by hand gets this
        return MethodResult(launch_error=f"in-parent runs a Python command in-process; "
                                         f"{child.argv[0]!r} is not a Python command")
    with _output_to_logs(child):
        code, ran = run_calls(target, child.calls, cwd=child.cwd, env=child.env,
                              rlimits=child.rlimits,
                              record_to=str(Path(child.workdir) / CALLS_FILE))
    return MethodResult(code, detail={"calls": ran})


CALLS_FILE = "calls.jsonl"  # LaunchFiles.calls

CATALOGUE: dict[str, Method] = {m.name: m for m in (
    Method("subprocess-pipes", "subprocess.run(capture_output=True), the field's call",
           subprocess_pipes),
    Method("popen-wait", "Popen(stdout=PIPE, stderr=PIPE).wait(): deadlocks on >64 KiB output",
           popen_wait),
    Method("os-system", "os.system(cmdline) through /bin/sh (the report's Solution A)",
           os_system),
    Method("shell", "subprocess.run(cmdline, shell=True), output inherited", shell),
    Method("mp-spawn", "multiprocessing spawn Process running the command in-process",
           mp_spawn, python_only=True),
    Method("mp-fork", "multiprocessing fork Process: inherits TF state from the parent",
           mp_fork, python_only=True),
    Method("env-isolated", "allow-listed env, output to files, new session", env_isolated,
           direct=True),
    Method("phase2", "the Phase 2 runner's launch: env-isolated + thread caps + pdeathsig",
           phase2, direct=True, pdeathsig=True),
    Method("in-parent", "the parent runs the training itself, --calls times (Solution B)",
           in_parent, python_only=True, in_process=True),
)}
