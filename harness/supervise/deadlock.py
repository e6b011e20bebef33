"""Deadlocks proven from a snapshot of /proc the moment they form, not waited out.

Two shapes are proven, and nothing else:

- **a wait-for cycle through a pipe**: a writer's thread is blocked in write/writev on a
  full pipe (its main thread, or its only one: a process ends through its main thread),
  and every process holding the pipe's read end is blocked waiting (wait4/waitid, no
  WNOHANG) for the writer or an ancestor of it, its other threads in untimed private futex
  waits. Nobody reads until the writer exits; the writer cannot exit until someone reads.
- **an unwakeable futex**: every thread of a process (one, in the classic fork-while-a-
  lock-is-held hang) is blocked in a *private* futex wait with *no timeout*. Only a thread
  of the same process can wake a private futex, and none is free to.

A process whose main thread waits for a proven one (its other threads in untimed private
futex waits) is stuck with it. A launch is proven deadlocked when its root is.

Never proven: a stopped (SIGSTOP) or traced process (the evidence says so), a thread whose
syscall cannot be read or that is running, a timed wait, a shared futex (another process
can wake it), a pipe whose readers cannot all be found, anything with WNOHANG. Signals
are the one way out these rules ignore: a handler that posts a semaphore would wake a
proven futex wait (glibc's sem_post is async-signal-safe); no program we launch does.

`prove()` is pure (tests feed it synthetic snapshots); `read()` takes the snapshot and
never raises: what it cannot read is unknown, and unknown proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

SYS_WRITE = {1: "write", 20: "writev"}
SYS_WAIT = {61: "wait4", 247: "waitid"}
SYS_FUTEX = 202
FUTEX_WAIT, FUTEX_WAIT_BITSET = 0, 9
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
WNOHANG = 1
P_ALL, P_PID = 0, 1
PROVEN = "deadlock proven"  # every proof's first line starts with it


@dataclass(frozen=True)
class Call:
    """The syscall a thread is blocked in: its number and six arguments."""

    nr: int
    args: tuple[int, ...]

    def arg(self, i: int) -> int:
        return self.args[i] if i < len(self.args) else 0

    def int_arg(self, i: int) -> int:
        """An `int` or `pid_t` argument: the register's low 32 bits, signed (a caller may
        leave the high ones clear: dash's wait4(-1) reads 0xffffffff)."""
        value = self.arg(i) & 0xFFFFFFFF
        return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(frozen=True)
class Task:
    """One process as the provers see it."""

    pid: int
    ppid: int
    threads: tuple[tuple[int, Call | None], ...]  # (tid, blocked in); None: running/unknown
    pipes: tuple[tuple[int, str, str], ...] = ()  # (fd, "pipe:[inode]", "r" or "w")
    full: frozenset[str] = frozenset()  # pipes this process writes whose buffer is full
    stopped: str | None = None  # "stopped (SIGSTOP)", "traced by pid N": never proven

    def pipe_at(self, fd: int) -> tuple[str, str] | None:
        return next(((name, mode) for f, name, mode in self.pipes if f == fd), None)


@dataclass(frozen=True)
class Snapshot:
    tasks: dict[int, Task]
    # pipe -> every pid holding its read end (host-wide); None: some holder may be unseen
    readers: dict[str, frozenset[int] | None]


@dataclass(frozen=True)
class Proof:
    kind: str  # "pipe" (a wait-for cycle through a pipe) or "futex" (an unwakeable wait)
    lines: tuple[str, ...]  # the first says what is proven; then one per process in it


def untimed_private_futex(call: Call | None) -> bool:
    """A private FUTEX_WAIT(_BITSET) with a NULL timeout: only this process can wake it."""
    if call is None or call.nr != SYS_FUTEX:
        return False
    op = call.int_arg(1)
    command = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    return bool(op & FUTEX_PRIVATE_FLAG) and command in (FUTEX_WAIT, FUTEX_WAIT_BITSET) \
        and call.arg(3) == 0


def _futex_stuck(task: Task) -> bool:
    return task.stopped is None and bool(task.threads) and all(
        untimed_private_futex(call) for _, call in task.threads)


def _main_call(task: Task) -> Call | None:
    return dict(task.threads).get(task.pid)


def _others_idle(task: Task, busy_tid: int) -> bool:
    """Every thread but busy_tid in an untimed private futex wait."""
    return all(untimed_private_futex(call) for tid, call in task.threads if tid != busy_tid)


def wait_target(call: Call | None) -> int | None:
    """The pid a blocking wait4/waitid waits for; -1 for any child; None if not such a
    wait (WNOHANG, a process group, a pidfd)."""
    if call is None or call.nr not in SYS_WAIT:
        return None
    if call.nr == 61:  # wait4(pid, status, options, rusage)
        pid = call.int_arg(0)
        return None if call.int_arg(2) & WNOHANG or pid < -1 or pid == 0 else pid
    # waitid(idtype, id, info, options, rusage)
    idtype, options = call.int_arg(0), call.int_arg(3)
    if options & WNOHANG or idtype not in (P_ALL, P_PID):
        return None
    return -1 if idtype == P_ALL else call.int_arg(1)


def _lineage(snap: Snapshot, pid: int) -> set[int]:
    """pid and its ancestors as far as the snapshot knows them."""
    seen: set[int] = set()
    while pid in snap.tasks and pid not in seen:
        seen.add(pid)
        pid = snap.tasks[pid].ppid
    return seen


def _waits_only_for(snap: Snapshot, waiter: Task, targets: set[int]) -> bool:
    """The waiter's main thread blocks until one of targets exits (a pid in targets, or any
    child while all its children are in targets); its other threads are idle."""
    call = _main_call(waiter)
    target = wait_target(call)
    if waiter.stopped is not None or target is None or not _others_idle(waiter, waiter.pid):
        return False
    if target == -1:
        children = {t.pid for t in snap.tasks.values() if t.ppid == waiter.pid}
        return bool(children) and children <= targets
    return target in targets


def _describe(task: Task) -> str:
    call = _main_call(task) or next((c for _, c in task.threads if c), None)
    if call is None:
        return f"pid {task.pid}"
    if call.nr == SYS_FUTEX:
        return (f"pid {task.pid}: {len(task.threads)} thread(s), each in a private futex "
                f"wait with no timeout (main thread on futex {call.arg(0):#x})")
    if call.nr in SYS_WAIT:
        return f"pid {task.pid}: blocked in {SYS_WAIT[call.nr]}({wait_target(call)})"
    return f"pid {task.pid}: blocked in syscall {call.nr}"


def _pipe_cycle(snap: Snapshot, writer: Task) -> dict[int, str] | None:
    """The cycle through a full pipe this writer is blocked on: a line per process in it."""
    if writer.stopped is not None:
        return None
    for tid, call in writer.threads:
        main_or_only = tid == writer.pid or len(writer.threads) == 1
        if call is None or call.nr not in SYS_WRITE or not main_or_only:
            continue
        pipe = writer.pipe_at(call.int_arg(0))
        holders = snap.readers.get(pipe[0]) if pipe and pipe[1] == "w" else None
        if not pipe or pipe[0] not in writer.full or not holders:
            continue
        lineage = _lineage(snap, writer.pid)
        waiters = [snap.tasks.get(pid) for pid in sorted(holders)]
        if all(w is not None and _waits_only_for(snap, w, lineage) for w in waiters):
            return {writer.pid: f"pid {writer.pid}: blocked in {SYS_WRITE[call.nr]}"
                                f"(fd={call.int_arg(0)}) on {pipe[0]}, full",
                    **{w.pid: f"{_describe(w)}, holding the read end of {pipe[0]}"
                       for w in waiters if w is not None}}
    return None


def prove(snap: Snapshot, root: int) -> Proof | None:
    """A proof that root (the launch's first process) can never make progress, or None."""
    proven: dict[int, str] = {}
    kind = ""
    for task in snap.tasks.values():
        if task.pid not in proven and (cycle := _pipe_cycle(snap, task)) is not None:
            proven.update(cycle)
            kind = "pipe"
    for task in snap.tasks.values():
        if task.pid not in proven and _futex_stuck(task):
            proven[task.pid], kind = _describe(task), kind or "futex"
    grew = True
    while grew:  # a process waiting only for proven ones is stuck with them
        grew = False
        for task in snap.tasks.values():
            if task.pid not in proven and _waits_only_for(snap, task, set(proven)):
                proven[task.pid], grew = f"{_describe(task)}, waiting for the above", True
    if root not in proven:
        return None
    what = ("a wait-for cycle through a full pipe" if kind == "pipe"
            else "every thread in a futex wait that no thread can wake")
    return Proof(kind, (f"{PROVEN}: {what}", *proven.values()))


def notes(snap: Snapshot) -> list[str]:
    """What kept a process out of any proof and should be said (stopped, traced)."""
    return [f"pid {t.pid} is {t.stopped}: not proven, the stall timeout decides"
            for t in snap.tasks.values() if t.stopped]
