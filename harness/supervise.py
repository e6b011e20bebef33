"""Watch launches: sample their process trees, notice stalls and timeouts, diagnose them
(pipes.py, stacks.py), kill whole trees (proctree.py), and count what is left.

One single-threaded loop watches every launch of a group. A launch makes
progress while its tree writes (bytes written, from /proc/PID/io), appends
events or grows its log files; it *stalls* after stall_timeout_s with none of
these, whether it is blocked (deadlock, pipe, lock) or burning CPU without
result (a spin, a collective waiting on a dead peer), and *times out* after
timeout_s while still making progress. Shutdown follows torch.distributed.elastic:
SIGTERM, one grace period, SIGKILL; the launching parent is spared until its child
is gone so it can still write the output it captured.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time

import psutil

from harness import stacks
from harness.files import LaunchFiles
from harness.gpuwork import GpuWorkProbe
from harness.observation import Observation
from harness.pipes import held_pipes, pipe_block
from harness.proctree import (
    alive,
    descendants,
    describe,
    marked,
    ppid_map,
    terminate,
    vm_peak,
)

SAMPLE_INTERVAL_S = 0.1
TERM_GRACE_S = 2.0
PARENT_EXIT_S = 15.0  # the parent still writes captured output once its child is gone
GPU_SAMPLE_EVERY_S = 1.0


class Watch:
    """One launch: its parent, every process seen in its tree, and what they did."""

    def __init__(self, index: int, parent: subprocess.Popen, files: LaunchFiles, marker: str,
                 gpu: GpuWorkProbe, include_root: bool = False) -> None:
        """parent: the launching parent, or the child itself when include_root (the harness
        was the launching parent); only then does the root count as part of the launch."""
        self.index, self.parent, self.files, self.marker, self.gpu = (
            index, parent, files, marker, gpu)
        self.include_root = include_root
        self.obs = Observation(index, files)
        self.known: dict[int, psutil.Process] = {}
        self._wchar: dict[int, int] = {}
        self._sizes: tuple[int, ...] = ()
        self._cpu: dict[int, float] = {}
        self._cpu_at_progress = 0.0
        self.last_progress = 0.0
        self.t0 = 0.0
        self.done = False
        try:
            self.pidfd: int | None = os.pidfd_open(parent.pid)
        except (AttributeError, OSError):  # kernels before 5.3
            self.pidfd = None
        self.threads_now = 0

    def begin(self, now: float) -> None:
        self.t0 = self.last_progress = now
        self.obs.started = time.time()
        self.obs.timeline["started"] = self.obs.started

    def tree(self, children: dict[int, list[int]] | None = None) -> list[psutil.Process]:
        """Live processes of this launch below the parent (known ones stay tracked after
        they are reparented)."""
        if children is not None:
            roots = [self.parent.pid] if self.include_root else []
            for pid in roots + descendants(self.parent.pid, children):
                if pid not in self.known:
                    try:
                        self.known[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
        return [p for p in self.known.values() if alive(p)]

    def sample(self, now: float, children: dict[int, list[int]]) -> None:
        tree = self.tree(children)
        threads = rss = 0
        progressed = False
        for proc in tree:
            try:
                with proc.oneshot():
                    threads += proc.num_threads()
                    memory = proc.memory_info()
                    wchar = proc.io_counters().write_chars
                    cpu = sum(proc.cpu_times()[:2])
            except psutil.Error:
                continue
            rss += memory.rss
            # RLIMIT_AS is per process: the largest address space any one of them reached,
            # by the kernel's own high-water mark (VmPeak), so a sample after the last
            # mapping sees it even when the sample before missed the climb.
            self.obs.peak_vms = max(self.obs.peak_vms, memory.vms, vm_peak(proc.pid))
            if wchar > self._wchar.get(proc.pid, 0):
                progressed = True
            self._wchar[proc.pid] = wchar
            self._cpu[proc.pid] = cpu
        self.threads_now = threads
        self.obs.peak_threads = max(self.obs.peak_threads, threads)
        self.obs.peak_rss = max(self.obs.peak_rss, rss)
        sizes = tuple(p.stat().st_size if p.exists() else 0 for p in self.files.progress_files())
        progressed |= sizes != self._sizes
        self._sizes = sizes
        if progressed:
            self.last_progress = now
            self._cpu_at_progress = self.cpu_s
            self.obs.timeline["last_progress"] = time.time()

    def final_cpu(self) -> None:
        """The exited root's whole CPU time (its threads', and its reaped children's),
        read from the zombie before it is reaped: no sample is missed at the end."""
        if not self.include_root:
            return
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(self.parent.pid).cpu_times()
            self._cpu[self.parent.pid] = sum(times[:4])

    @property
    def cpu_s(self) -> float:
        """CPU seconds (user + system) of every process of the tree seen so far."""
        return sum(self._cpu.values())

    def cpu_since_progress(self) -> float:
        return round(self.cpu_s - self._cpu_at_progress, 2)

    # -- diagnosis ------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Everything of this launch below the parent: the tree seen so far, plus marked
        processes that were reparented before a sample caught them."""
        procs = {p.pid: p for p in self.tree()}
        procs.update({p.pid: p for p in marked(self.marker)
                      if self.include_root or p.pid != self.parent.pid})
        return list(procs.values())

    def diagnose_stall(self) -> list[str]:
        procs = self.processes()
        found = [line for proc in procs if (line := pipe_block(proc.pid))]
        try:
            children = psutil.Process(self.parent.pid).children()
        except psutil.Error:
            children = []
        if not self.include_root and not any(alive(c) for c in children):
            found += held_pipes(self.parent.pid, procs)  # the child is gone, the parent waits
        return found

    def dump_stacks(self) -> str | None:
        """Stacks of the launch and of its launching parent: where the parent waits is
        part of the story."""
        procs = {p.pid: p for p in self.processes()}
        with contextlib.suppress(psutil.Error):
            procs.setdefault(self.parent.pid, psutil.Process(self.parent.pid))
        return stacks.dump(self.files, list(procs.values()))

    # -- shutdown -------------------------------------------------------------------

    def kill_tree(self, grace_s: float = TERM_GRACE_S) -> list[str]:
        """SIGTERM the processes below the parent, SIGKILL what survives grace_s."""
        self.tree(ppid_map())
        victims = self.processes()
        killed = [describe(p) for p in victims]
        terminate(victims, grace_s)
        return killed

    def finish_parent(self, wait_s: float = PARENT_EXIT_S) -> None:
        try:
            self.obs.parent_returncode = self.parent.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.obs.parent_killed = True
            self.parent.kill()
            self.obs.parent_returncode = self.parent.wait()


class Supervisor:
    """Watches any number of launches in one single-threaded loop; launches may be added
    while others run (the Phase 2 runner admits them one by one)."""

    def __init__(self, timeout_s: float, stall_timeout_s: float,
                 interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.timeout_s, self.stall_timeout_s, self.interval_s = (
            timeout_s, stall_timeout_s, interval_s)
        self.watches: list[Watch] = []
        self._next_gpu = 0.0

    @property
    def running(self) -> list[Watch]:
        return [w for w in self.watches if not w.done]

    def add(self, watch: Watch) -> None:
        watch.begin(time.monotonic())
        self.watches.append(watch)

    def tick(self) -> list[Watch]:
        """One sampling round; returns the launches that finished in it."""
        now = time.monotonic()
        children = ppid_map()
        sample_gpu = now >= self._next_gpu
        if sample_gpu:
            self._next_gpu = now + GPU_SAMPLE_EVERY_S
        finished = []
        for watch in self.running:
            exited = _exited(watch.parent.pid)  # not reaped yet: its CPU times still read
            watch.sample(now, children)
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

    def interrupt(self, reason: str) -> None:
        """Stop every unfinished launch now (no diagnosis), recording why."""
        for watch in self.running:
            watch.obs.interrupted = reason
            _stop(watch, time.monotonic(), stalled=False, diagnose=False)
            watch.obs.gpu_work = watch.gpu.result.record()


def _stop(watch: Watch, now: float, stalled: bool, diagnose: bool = True) -> None:
    obs = watch.obs
    obs.timeline["stopped"] = time.time()
    if diagnose:
        obs.stalled, obs.timed_out = stalled, not stalled
        if stalled:
            obs.stall_evidence = watch.diagnose_stall()
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


def _settle(watch: Watch, now: float) -> None:
    """The parent has exited: anything of the launch still alive is a straggler; kill it."""
    obs = watch.obs
    obs.timeline.setdefault("exited", time.time())
    if obs.parent_returncode is None:
        obs.parent_returncode = watch.parent.wait()
    obs.duration_s = round(now - watch.t0, 3)
    obs.cpu_s = round(watch.cpu_s, 3)
    obs.stragglers = watch.kill_tree(grace_s=0.5)
    obs.timeline["reaped"] = time.time()
    if watch.pidfd is not None:
        os.close(watch.pidfd)
        watch.pidfd = None
    obs.orphans = [describe(p) for p in marked(watch.marker)] + [
        describe(p) for p in watch.known.values() if alive(p)]
    watch.done = True
