"""A snapshot of processes from /proc for the deadlock provers (deadlock.py): what each
thread is blocked in, which pipe ends each process holds, which written pipes are full,
and every holder of those pipes' read ends on the host.

It never raises: what it cannot read is unknown (a thread's call None, a pipe's readers
None), and unknown proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from harness.supervise.deadlock import SYS_WRITE, Call, Snapshot, Task
from harness.supervise.pipes import fill, is_full

_ACCESS = {0: "r", 1: "w", 2: "rw"}  # O_ACCMODE of an fd's flags (fdinfo, octal)


def _text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _call(text: str | None) -> Call | None:
    """A thread's /proc syscall line: "NR ARG1..ARG6 SP PC" while blocked in a syscall;
    "running", or "-1 SP PC" outside one, is no call."""
    fields = (text or "").split()
    if len(fields) < 7 or not fields[0].isdigit():
        return None
    try:
        return Call(int(fields[0]), tuple(int(f, 16) for f in fields[1:7]))
    except ValueError:
        return None


def _status(pid: int) -> dict[str, str] | None:
    text = _text(f"/proc/{pid}/status")
    if text is None:
        return None
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _stopped(status: dict[str, str]) -> str | None:
    state, tracer = status.get("State", "?")[:1], status.get("TracerPid", "0")
    if tracer not in ("", "0"):
        return f"traced by pid {tracer}"
    return {"T": "stopped (SIGSTOP)", "t": "stopped by its tracer"}.get(state)


def _pipes(pid: int) -> tuple[tuple[int, str, str], ...]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return ()
    found = []
    for fd in fds:
        try:
            name = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if name.startswith("pipe:") and (mode := _mode(pid, fd)):
            found.append((int(fd), name, mode))
    return tuple(found)


def _mode(pid: int, fd: str) -> str | None:
    for line in (_text(f"/proc/{pid}/fdinfo/{fd}") or "").splitlines():
        if line.startswith("flags:"):
            try:
                return _ACCESS.get(int(line.split()[1], 8) & 3)
            except (IndexError, ValueError):
                return None
    return None


def task(pid: int) -> Task | None:
    """One process, or None if it is gone, exiting (a zombie) or unreadable."""
    status = _status(pid)
    if status is None or status.get("State", "Z")[:1] in "ZX":
        return None
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        ppid = int(status.get("PPid", "0"))
    except (OSError, ValueError):
        return None
    threads = tuple((tid, _call(_text(f"/proc/{pid}/task/{tid}/syscall"))) for tid in tids)
    pipes = _pipes(pid)
    full = frozenset(name for _, call in threads if call and call.nr in SYS_WRITE
                     and (found := fill(pid, call.int_arg(0))) and is_full(*found[1:])
                     for name in (found[0],))
    return Task(pid, ppid, threads, pipes, full, _stopped(status))


def _readers(wanted: set[str]) -> dict[str, frozenset[int] | None]:
    """Every process on the host holding a read end of the wanted pipes. A process of our
    own uid whose fds cannot be listed could hold one: then that pipe's readers are
    unknown (None)."""
    holders: dict[str, set[int]] = {name: set() for name in wanted}
    unknown = False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        except OSError:
            unknown |= _owner(pid) == os.getuid()
            continue
        for fd in fds:
            try:
                name = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if name in holders and "r" in (_mode(pid, fd) or "r"):
                holders[name].add(pid)
    return {name: None if unknown else frozenset(pids) for name, pids in holders.items()}


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def read(pids: Iterable[int]) -> Snapshot:
    """The processes (those still there), and the readers of every full pipe they write."""
    tasks = {t.pid: t for pid in dict.fromkeys(pids) if (t := task(pid)) is not None}
    wanted = {name for t in tasks.values() for name in t.full}
    return Snapshot(tasks, _readers(wanted) if wanted else {})
