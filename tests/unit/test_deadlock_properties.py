"""The provers over synthetic /proc snapshots: a proof is found only where the snapshot
holds a cycle through a full pipe or a process whose every thread waits on a private
futex with no timeout, and always where such a shape reaches the root."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.supervise.deadlock import (
    SYS_FUTEX,
    SYS_WAIT,
    SYS_WRITE,
    Call,
    Snapshot,
    Task,
    prove,
    untimed_private_futex,
    wait_target,
)

PIPE = "pipe:[7]"
PRIVATE_WAIT, SHARED_WAIT = 128, 0  # FUTEX_WAIT with and without FUTEX_PRIVATE_FLAG

calls = st.one_of(
    st.none(),  # running, or unreadable
    st.builds(lambda op, timeout: Call(SYS_FUTEX, (0x1000, op, 0, timeout, 0, 0)),
              st.sampled_from([PRIVATE_WAIT, SHARED_WAIT, 137, 393, 9]),
              st.sampled_from([0, 0x7FFF0000])),
    st.builds(lambda pid, options: Call(61, (pid, 0, options, 0, 0, 0)),
              st.sampled_from([1, 2, 3, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF]), st.sampled_from([0, 1])),
    st.builds(lambda fd: Call(1, (fd, 0, 4096, 0, 0, 0)), st.sampled_from([1, 2])),
    st.builds(lambda: Call(230, (0, 0, 0, 0, 0, 0))),  # clock_nanosleep: timed
)


@st.composite
def snapshots(draw) -> Snapshot:
    """Up to 3 processes 1 <- 2 <- 3 (ppid chain), random calls, one pipe written by
    some and read by others, full or not."""
    n = draw(st.integers(1, 3))
    tasks = {}
    for pid in range(1, n + 1):
        threads = tuple((pid if i == 0 else 100 * pid + i, draw(calls))
                        for i in range(draw(st.integers(1, 3))))
        pipes = tuple((fd, PIPE, mode) for fd, mode in ((1, "w"), (5, "r"))
                      if draw(st.booleans()))
        full = frozenset({PIPE}) if draw(st.booleans()) else frozenset()
        stopped = draw(st.sampled_from([None, None, "stopped (SIGSTOP)"]))
        tasks[pid] = Task(pid, pid - 1, threads, pipes, full, stopped)
    readers = {PIPE: frozenset(t.pid for t in tasks.values() for _, name, m in t.pipes
                               if "r" in m)}
    if draw(st.booleans()):
        readers[PIPE] = None  # a holder could not be seen
    return Snapshot(tasks, readers)


def _unwakeable(task: Task) -> bool:
    return task.stopped is None and all(
        c is not None and c.nr == SYS_FUTEX and c.args[1] & 128 and c.args[3] == 0
        for _, c in task.threads)


def _cycle(snap: Snapshot) -> bool:
    """Some writer blocked in write on a full pipe, readers known, each of them waiting."""
    for w in snap.tasks.values():
        writes = [c for _, c in w.threads if c is not None and c.nr in SYS_WRITE]
        if w.stopped or not writes or PIPE not in w.full or not snap.readers.get(PIPE):
            continue
        readers = [snap.tasks.get(pid) for pid in snap.readers[PIPE] or ()]
        if all(r is not None and not r.stopped and any(
                c is not None and c.nr in SYS_WAIT for _, c in r.threads) for r in readers):
            return True
    return False


@settings(max_examples=3000, deadline=None)
@given(snapshots(), st.integers(1, 3))
def test_a_proof_only_where_the_snapshot_holds_a_deadlock(snap, root):
    proof = prove(snap, root)
    if proof is None:
        return
    if proof.kind == "pipe":
        assert _cycle(snap)
    else:
        assert any(_unwakeable(t) for t in snap.tasks.values())
    assert snap.tasks[root].stopped is None
    assert f"pid {root}:" in " ".join(proof.lines)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 3), st.sampled_from([PRIVATE_WAIT, 137, 393]))
def test_a_chain_of_waiters_above_an_unwakeable_wait_is_always_proven(depth, op):
    stuck = Task(depth, depth - 1, ((depth, Call(SYS_FUTEX, (0x10, op, 0, 0, 0, 0))),))
    waiters = {pid: Task(pid, pid - 1, ((pid, Call(61, (pid + 1, 0, 0, 0, 0, 0))),))
               for pid in range(1, depth)}
    snap = Snapshot({**waiters, depth: stuck}, {})
    proof = prove(snap, 1)
    assert proof is not None and proof.kind == "futex"
    assert len(proof.lines) == depth + 1


def test_the_call_readers_agree_with_the_kernels_encoding():
    assert untimed_private_futex(Call(SYS_FUTEX, (1, 393, 0, 0, 0, 0)))
    assert not untimed_private_futex(Call(SYS_FUTEX, (1, 393, 0, 0x7FFF, 0, 0)))  # timed
    assert not untimed_private_futex(Call(SYS_FUTEX, (1, 9, 0, 0, 0, 0)))  # shared
    assert wait_target(Call(61, (0xFFFFFFFF, 0, 0, 0, 0, 0))) == -1  # dash's wait4(-1)
    assert wait_target(Call(61, (42, 0, 1, 0, 0, 0))) is None  # WNOHANG never blocks
    assert wait_target(Call(247, (1, 42, 0, 4, 0, 0))) == 42  # waitid(P_PID, 42, WEXITED)
    assert wait_target(Call(247, (3, 5, 0, 4, 0, 0))) is None  # P_PIDFD: not followed


def test_a_process_that_raced_away_proves_nothing():
    import subprocess

    from harness.supervise import procsnap

    gone = subprocess.Popen(["true"])
    gone.wait()
    snap = procsnap.read([gone.pid])
    assert snap.tasks == {} and prove(snap, gone.pid) is None
