"""Supervise launches: sample their process trees (watch.py), notice stalls and
timeouts, diagnose them (pipes.py, stacks.py), kill whole trees (proctree.py), and count
what is left.

One single-threaded loop watches every launch of a group. A launch makes
progress while its tree writes (bytes written, from /proc/PID/io), appends
events or grows its log files; it *stalls* after stall_timeout_s with none of
these, whether it is blocked (deadlock, pipe, lock) or burning CPU without
result (a spin, a collective waiting on a dead peer), and *times out* after
timeout_s while still making progress. A deadlock that can be proven from /proc (a
wait-for cycle through a pipe, a futex wait no thread can wake: deadlock.py) ends the
launch once its tree has made no progress for SETTLE_S, not after the stall timeout.
Shutdown follows torch.distributed.elastic:
SIGTERM, one grace period, SIGKILL; the launching parent is spared until its child
is gone so it can still write the output it captured.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable

import psutil

from harness.host.proctree import alive, describe, marked, ppid_map
from harness.supervise.deadlock import Proof
from harness.supervise.logcap import LOG_CAP_BYTES, LogCap
from harness.supervise.watch import Watch

__all__ = ["SAMPLE_INTERVAL_S", "Supervisor", "Watch"]
SAMPLE_INTERVAL_S = 0.1
GPU_SAMPLE_EVERY_S = 1.0
SETTLE_S = 1.0  # no progress for this long before the provers look: a pipe that fills for
# a moment, or a lock held briefly, is not a deadlock


class Supervisor:
    """Watches any number of launches in one single-threaded loop; launches may be added
    while others run (the Phase 2 runner admits them one by one)."""

    def __init__(self, timeout_s: float, stall_timeout_s: float,
                 interval_s: float = SAMPLE_INTERVAL_S,
                 log_cap_bytes: int = LOG_CAP_BYTES) -> None:
        self.timeout_s, self.stall_timeout_s, self.interval_s = (
            timeout_s, stall_timeout_s, interval_s)
        self.log_cap_bytes = log_cap_bytes
        self.watches: list[Watch] = []
        self._next_gpu = 0.0
        # The budget group's (pids.current, pids.max), read once per tick for the samples.
        self.budget: Callable[[], tuple[int | None, int | None]] = lambda: (None, None)

    @property
    def running(self) -> list[Watch]:
        return [w for w in self.watches if not w.done]

    def add(self, watch: Watch) -> None:
        watch.log_cap = LogCap(self.log_cap_bytes)
        watch.begin(time.monotonic())
        self.watches.append(watch)

    def forget(self, watch: Watch) -> None:
        """A finished launch whose outcome is built: no longer watched or kept."""
        self.watches.remove(watch)

    def tick(self) -> list[Watch]:
        """One sampling round; returns the launches that finished in it."""
        now = time.monotonic()
        children = ppid_map()
        sample_gpu = now >= self._next_gpu
        if sample_gpu:
            self._next_gpu = now + GPU_SAMPLE_EVERY_S
        finished = []
        budget = self.budget()
        for watch in self.running:
            exited = _exited(watch.parent.pid)  # not reaped yet: its CPU times still read
            watch.sample(now, children, budget)
            if exited:
                watch.final_cpu()
            if sample_gpu:
                watch.gpu.sample({p.pid for p in watch.tree()})
            if exited and watch.parent.poll() is not None:
                _settle(watch, now)
            elif now - watch.last_progress > self.stall_timeout_s:
                _stop(watch, now, stalled=True)
            elif now - watch.t0 > self.timeout_s:
                _stop(watch, now, stalled=False)
            elif now - watch.last_progress > SETTLE_S and (proof := watch.prove(now)):
                _stop(watch, now, stalled=True, proof=proof)
            if watch.done:
                watch.obs.gpu_work = watch.gpu.result.record()
                finished.append(watch)
        return finished

    def run(self) -> None:
        """Tick until every launch has finished; an interrupt stops them all and is recorded
        in each unfinished Observation (the caller still writes partial outcomes)."""
        try:
            while self.running:
                self.tick()
                if self.running:
                    self.wait(self.interval_s)
        except KeyboardInterrupt as exc:
            self.interrupt(str(exc) or "KeyboardInterrupt")
        finally:
            self.interrupt("supervision ended early")

    def wait(self, timeout_s: float) -> None:
        """Sleep until the next sample is due, waking at once when a launching parent
        exits (pidfd), so an outcome is not held back by the sampling interval."""
        running = self.running
        fds = [w.pidfd for w in running if w.pidfd is not None]
        if running and len(fds) == len(running):
            select.select(fds, [], [], timeout_s)
        else:
            time.sleep(timeout_s)

    def stop(self, watch: Watch, reason: str) -> bool:
        """Stop one launch now (no diagnosis), recording why; False where it ended."""
        if watch.done or watch not in self.watches:
            return False
        watch.obs.interrupted = reason
        _stop(watch, time.monotonic(), stalled=False, diagnose=False)
        watch.obs.gpu_work = watch.gpu.result.record()
        return True

    def interrupt(self, reason: str) -> None:
        """Stop every unfinished launch now (no diagnosis), recording why."""
        for watch in self.running:
            watch.obs.interrupted = reason
            _stop(watch, time.monotonic(), stalled=False, diagnose=False)
            watch.obs.gpu_work = watch.gpu.result.record()


def _stop(watch: Watch, now: float, stalled: bool, diagnose: bool = True,
          proof: Proof | None = None) -> None:
    obs = watch.obs
    obs.timeline["stopped"] = time.time()
    if proof is not None:
        obs.proof, obs.proof_kind = list(proof.lines), proof.kind
    if diagnose:
        obs.stalled, obs.timed_out = stalled, not stalled
        if stalled:
            obs.stall_evidence = watch.diagnose_stall() + (
                [] if proof else watch.proof_notes)
            obs.stall_cpu_s = watch.cpu_since_progress()
            obs.stall_s = round(now - watch.last_progress, 2)
        obs.stack_dump = watch.dump_stacks()
    watch.kill_tree()
    watch.finish_parent()
    _settle(watch, now)


def _exited(pid: int) -> bool:
    """Whether this child of ours has exited, without reaping it (WNOWAIT)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _escaped(watch: Watch) -> list[str]:
    """What is left in the launch's own cgroup once its tree is gone: processes that left
    the tree (setsid and a double fork, a cleared environment), killed through the cgroup,
    which nothing leaves."""
    if watch.cgroup is None:
        return []
    left = []
    for pid in watch.cgroup.procs():
        with contextlib.suppress(psutil.Error):
            left.append(f"{describe(psutil.Process(pid))} (left its tree; found in its cgroup)")
    if left:
        watch.cgroup.kill_all()
    return left


def _settle(watch: Watch, now: float) -> None:
    """The parent has exited: anything of the launch still alive is a straggler; kill it."""
    obs = watch.obs
    obs.timeline.setdefault("exited", time.time())
    if obs.parent_returncode is None:
        obs.parent_returncode = watch.parent.wait()
    obs.duration_s = round(now - watch.t0, 3)
    obs.notes += watch.log_cap.evidence()
    obs.cpu_s = round(watch.cpu_s, 3)
    obs.stragglers = watch.kill_tree(grace_s=0.5) + _escaped(watch)
    obs.timeline["reaped"] = time.time()
    if watch.pidfd is not None:
        os.close(watch.pidfd)
        watch.pidfd = None
    if watch.recorder is not None:
        watch.recorder.close()
    obs.orphans = [describe(p) for p in marked(watch.marker)] + [
        describe(p) for p in watch.known.values() if alive(p)]
    watch.done = True
