"""Pipe diagnosis from outside the processes, through /proc: a writer blocked on a full
pipe nobody reads, and a parent waiting for EOF on a pipe a leftover process holds."""

from __future__ import annotations

import array
import fcntl
import os
import termios
from pathlib import Path

import psutil

from harness.host.proctree import describe

_F_GETPIPE_SZ = 1032
_PAGE_BYTES = 4096
_WRITE_SYSCALLS = {1: "write", 20: "writev"}
_READ_SYSCALLS = {0: "read", 7: "poll", 23: "select", 232: "epoll_wait", 270: "pselect6",
                  271: "ppoll", 281: "epoll_pwait"}
# In every pipe_block() line (write or writev): classify() looks for it.
BLOCKED_WRITE = "blocked in write"


def _syscall(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return []


def _in(syscall: list[str], table: dict[int, str]) -> bool:
    return bool(syscall) and syscall[0].isdigit() and int(syscall[0]) in table


def fill(pid: int, fd: int) -> tuple[str, int, int] | None:
    """("pipe:[inode]", bytes buffered, capacity) of the pipe behind pid's fd, or None (not
    a pipe, gone, unreadable). Opened through /proc without blocking; nothing is read."""
    try:
        name = os.readlink(f"/proc/{pid}/fd/{fd}")
        if not name.startswith("pipe:"):
            return None
        reader = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        queued = array.array("i", [0])
        fcntl.ioctl(reader, termios.FIONREAD, queued)
        return name, queued[0], fcntl.fcntl(reader, _F_GETPIPE_SZ)
    except OSError:
        return None
    finally:
        os.close(reader)


def is_full(buffered: int, capacity: int) -> bool:
    """A writer blocks once every pipe page is used, which can be a little short of the
    capacity in bytes."""
    return buffered >= capacity - _PAGE_BYTES


def pipe_block(pid: int) -> str | None:
    """Evidence that pid is blocked writing into a full pipe, or None."""
    fields = _syscall(pid)
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return None
    if not _in(fields, _WRITE_SYSCALLS):
        return None
    fd = int(fields[1], 16)
    found = fill(pid, fd)
    if found is None:
        return None
    target, queued, capacity = found
    # the kernel's own wait channel says it outright where the bytes leave a doubt
    if "pipe_write" not in wchan and not is_full(queued, capacity):
        return None
    return (f"pid {pid} blocked in {_WRITE_SYSCALLS[int(fields[0])]}(fd={fd}) on {target}: "
            f"{queued}/{capacity} bytes buffered, nobody reading (wchan {wchan})")


def _pipes(pid: int) -> set[str]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    found = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(target)
    return found


def held_pipes(parent_pid: int, tree: list[psutil.Process]) -> list[str]:
    """Evidence that the parent waits on a pipe which only a leftover process holds open."""
    syscall = _syscall(parent_pid)
    if not _in(syscall, _READ_SYSCALLS):
        return []
    parent_pipes = _pipes(parent_pid)
    found = []
    for proc in tree:
        shared = parent_pipes & _pipes(proc.pid)
        if shared:
            found.append(f"the child exited but {describe(proc)} still holds "
                         f"{', '.join(sorted(shared))} open; the parent is blocked in "
                         f"{_READ_SYSCALLS[int(syscall[0])]} waiting for EOF")
    return found
