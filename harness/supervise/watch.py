"""Watch: one launch under supervision: every process seen in its tree, what they did
(threads, memory, CPU, writes: progress), its samples, and how to kill it all.

The Supervisor (supervise.py) runs one loop over every Watch of a group.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import psutil

from harness.host.cgroup import PidsCgroup
from harness.host.proctree import (
    alive,
    descendants,
    describe,
    marked,
    ppid_map,
    terminate,
    vm_peak,
)
from harness.supervise import deadlock, procsnap, stacks
from harness.supervise.files import LaunchFiles
from harness.supervise.gpuwork import GpuWorkProbe
from harness.supervise.logcap import LOG_CAP_BYTES, LogCap
from harness.supervise.observation import Observation
from harness.supervise.pipes import held_pipes, pipe_block
from harness.supervise.samples import Recorder

TERM_GRACE_S = 2.0
PROVE_EVERY_S = 0.25  # between two /proc snapshots; a proof must hold in two in a row
PARENT_EXIT_S = 15.0  # the parent still writes captured output once its child is gone


class Watch:
    """One launch: its parent, every process seen in its tree, and what they did."""

    def __init__(self, index: int, parent: subprocess.Popen, files: LaunchFiles, marker: str,
                 gpu: GpuWorkProbe, direct: bool = False,
                 cgroup: PidsCgroup | None = None) -> None:
        """parent: the launching parent, or the child itself when direct (the harness
        was the launching parent); only then does the root count as part of the launch.
        cgroup: the launch's own, which every process of it is in (none escapes it)."""
        self.index, self.parent, self.files, self.marker, self.gpu = (
            index, parent, files, marker, gpu)
        self.direct, self.cgroup = direct, cgroup
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
        self.recorder: Recorder | None = None
        self.log_cap = LogCap(LOG_CAP_BYTES)  # the supervisor sets the group's cap
        self._proved_at = 0.0
        self._last_proof: deadlock.Proof | None = None
        self.proof_notes: list[str] = []  # why a blocked process could not be proven

    def begin(self, now: float) -> None:
        self.recorder = Recorder(self.files)
        self.t0 = self.last_progress = now
        self.obs.started = time.time()
        self.obs.timeline["started"] = self.obs.started

    def tree(self, children: dict[int, list[int]] | None = None) -> list[psutil.Process]:
        """Live processes of this launch below the parent (known ones stay tracked after
        they are reparented)."""
        if children is not None:
            roots = [self.parent.pid] if self.direct else []
            for pid in roots + descendants(self.parent.pid, children):
                if pid not in self.known:
                    try:
                        self.known[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
        return [p for p in self.known.values() if alive(p)]

    def sample(self, now: float, children: dict[int, list[int]],
               budget: tuple[int | None, int | None] = (None, None)) -> None:
        """One sample of the tree; budget: the group's (pids.current, pids.max) now."""
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
        for path, size in zip(self.files.progress_files()[1:], sizes[1:], strict=True):
            self.log_cap.hold(path, size)  # stdout, stderr
        progressed |= sizes != self._sizes
        self._sizes = sizes
        if self.recorder is not None:
            self.recorder.write({"t": time.time(), "threads": threads, "rss": rss,
                                 "cpu_s": round(self.cpu_s, 3), "stderr_bytes": sizes[2],
                                 "budget_current": budget[0], "budget_max": budget[1],
                                 # per device (NVML cannot split it by process), <= 1 s old
                                 "gpu_memory_used": sum(self.gpu.memory_used.values())
                                 if self.gpu.memory_used else None})
        if progressed:
            self.last_progress = now
            self._cpu_at_progress = self.cpu_s
            self.obs.timeline["last_progress"] = time.time()

    def final_cpu(self) -> None:
        """The exited root's whole CPU time (its threads', and its reaped children's),
        read from the zombie before it is reaped: no sample is missed at the end."""
        if not self.direct:
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
                      if self.direct or p.pid != self.parent.pid})
        return list(procs.values())

    def diagnose_stall(self) -> list[str]:
        procs = self.processes()
        found = [line for proc in procs if (line := pipe_block(proc.pid))]
        try:
            children = psutil.Process(self.parent.pid).children()
        except psutil.Error:
            children = []
        if not self.direct and not any(alive(c) for c in children):
            found += held_pipes(self.parent.pid, procs)  # the child is gone, the parent waits
        return found

    def prove(self, now: float) -> deadlock.Proof | None:
        """A deadlock of this launch proven from /proc, once the same proof holds in two
        snapshots PROVE_EVERY_S apart (a thread caught between two syscalls is not
        blocked for good); None until then. The launch's root is its first process."""
        if now - self._proved_at < PROVE_EVERY_S:
            return None
        self._proved_at = now
        snap = procsnap.read([self.parent.pid, *(p.pid for p in self.tree())])
        self.proof_notes = deadlock.notes(snap)
        proof = deadlock.prove(snap, self.parent.pid)
        confirmed = proof if proof is not None and proof == self._last_proof else None
        self._last_proof = proof
        return confirmed

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
