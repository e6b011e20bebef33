"""Watch launches: sample their process trees, notice stalls and timeouts, diagnose,
dump stacks, kill whole trees, and count what is left.

One single-threaded loop watches every launch of a group. A launch makes
progress while its tree writes output (bytes written, from /proc/PID/io),
appends events, or burns CPU; it *stalls* after stall_timeout_s with none of
these (blocked: deadlock, pipe, lock) and *times out* after timeout_s whatever
it does. Shutdown follows torch.distributed.elastic: SIGTERM, one grace
period, SIGKILL; the launching parent is spared until its child is gone so it
can still write the output it captured.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness import nvml
from harness.workload import events as ev

SAMPLE_INTERVAL_S = 0.1
CPU_WINDOW_S = 1.0
CPU_PROGRESS_S = 0.1  # CPU seconds per window that count as activity
TERM_GRACE_S = 2.0
PARENT_EXIT_S = 15.0  # the parent still writes captured output once its child is gone
PYSPY_TIMEOUT_S = 20.0
STACK_SIGNAL_WAIT_S = 0.5
GPU_SAMPLE_EVERY_S = 1.0
_F_GETPIPE_SZ = 1032
_PAGE_BYTES = 4096
_WRITE_SYSCALLS = {1: "write", 20: "writev"}
_READ_SYSCALLS = {0: "read", 7: "poll", 23: "select", 232: "epoll_wait", 270: "pselect6",
                  271: "ppoll", 281: "epoll_pwait"}
LAUNCH_MARKER_ENV = "HARNESS_LAUNCH"


@dataclass(frozen=True)
class LaunchFiles:
    """Where one launch keeps everything: nothing is lost, all in one directory."""

    dir: Path

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @property
    def events(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def stacks(self) -> Path:
        return self.dir / "stacks.txt"

    @property
    def parent_log(self) -> Path:
        return self.dir / "parent.log"

    @property
    def parent_result(self) -> Path:
        return self.dir / "parent.json"

    @property
    def outcome(self) -> Path:
        return self.dir / "outcome.json"

    def progress_files(self) -> tuple[Path, ...]:
        return self.events, self.stdout, self.stderr


@dataclass
class Observation:
    """What supervision saw of one launch; classify() turns it into a verdict."""

    index: int
    files: LaunchFiles
    parent_returncode: int | None = None
    started: float = 0.0  # wall clock at "go"
    duration_s: float = 0.0
    peak_threads: int = 0
    peak_rss: int = 0
    stalled: bool = False
    timed_out: bool = False
    interrupted: str | None = None
    stall_evidence: list[str] = field(default_factory=list)
    stack_dump: str | None = None
    stragglers: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    parent_killed: bool = False
    gpu_work: dict = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)  # wall clock: last_progress, stopped, reaped


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} ({' '.join(proc.cmdline())[:120] or proc.name()})"
    except psutil.Error:
        return f"pid {proc.pid}"


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"], []).append(proc.pid)
    return children


def _descendants(root: int, children: dict[int, list[int]]) -> list[int]:
    found, stack = [], [root]
    while stack:
        for pid in children.get(stack.pop(), []):
            found.append(pid)
            stack.append(pid)
    return found


def marked(marker: str, prefix: bool = False) -> list[psutil.Process]:
    """Every live process whose environment carries this launch's marker (or, with
    prefix=True, any marker starting with it, e.g. "OWNER:" for all of an owner's)."""
    needle = f"{LAUNCH_MARKER_ENV}={marker}".encode()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        hit = any(e.startswith(needle) for e in entries) if prefix else needle in entries
        if hit and _alive(proc):
            found.append(proc)
    return found


class Watch:
    """One launch: its parent, every process seen in its tree, and what they did."""

    def __init__(self, index: int, parent: subprocess.Popen, files: LaunchFiles, marker: str,
                 gpu: nvml.GpuWorkProbe, include_root: bool = False) -> None:
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
        self._cpu_mark = 0.0
        self._window_end = 0.0
        self.last_progress = 0.0
        self.t0 = 0.0
        self.done = False
        self.pending: object = None  # the launcher's own record of this launch
        try:
            self.pidfd: int | None = os.pidfd_open(parent.pid)
        except (AttributeError, OSError):  # kernels before 5.3
            self.pidfd = None
        self.threads_now = 0

    def begin(self, now: float) -> None:
        self.t0 = self.last_progress = now
        self._window_end = now + CPU_WINDOW_S
        self.obs.started = time.time()
        self.obs.timeline["started"] = self.obs.started

    def tree(self, children: dict[int, list[int]] | None = None) -> list[psutil.Process]:
        """Live processes of this launch below the parent (known ones stay tracked after
        they are reparented)."""
        if children is not None:
            roots = [self.parent.pid] if self.include_root else []
            for pid in roots + _descendants(self.parent.pid, children):
                if pid not in self.known:
                    try:
                        self.known[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
        return [p for p in self.known.values() if _alive(p)]

    def sample(self, now: float, children: dict[int, list[int]]) -> None:
        tree = self.tree(children)
        threads = rss = 0
        progressed = False
        for proc in tree:
            try:
                with proc.oneshot():
                    threads += proc.num_threads()
                    rss += proc.memory_info().rss
                    wchar = proc.io_counters().write_chars
                    cpu = sum(proc.cpu_times()[:2])
            except psutil.Error:
                continue
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
        if now >= self._window_end:
            total = sum(self._cpu.values())
            progressed |= total - self._cpu_mark >= CPU_PROGRESS_S
            self._cpu_mark, self._window_end = total, now + CPU_WINDOW_S
        if progressed:
            self.last_progress = now
            self.obs.timeline["last_progress"] = time.time()

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
        if not self.include_root and not any(_alive(c) for c in children):
            found += held_pipes(self.parent.pid, procs)  # the child is gone, the parent waits
        return found

    def dump_stacks(self) -> str | None:
        """faulthandler through the signal the workload registered, then py-spy."""
        path = self.files.stacks
        start = next((e for e in ev.read_events(self.files.events) if e["event"] == ev.START),
                     None)
        if start and start.get("stack_signal") and psutil.pid_exists(start["pid"]):
            with open(path, "a") as f:
                f.write(f"--- faulthandler ({start['stack_signal']}) pid {start['pid']} ---\n")
            try:
                os.kill(start["pid"], getattr(signal, start["stack_signal"]))
                time.sleep(STACK_SIGNAL_WAIT_S)
            except (ProcessLookupError, AttributeError):
                pass
        pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(
            sys.executable))
        if pyspy:  # the parent too: where it waits is part of the story
            procs = {p.pid: p for p in self.processes()}
            with contextlib.suppress(psutil.Error):
                procs.setdefault(self.parent.pid, psutil.Process(self.parent.pid))
            for proc in procs.values():
                try:
                    if "python" not in proc.name():
                        continue
                except psutil.Error:
                    continue
                dump = subprocess.run([pyspy, "dump", "--pid", str(proc.pid)],
                                      capture_output=True, text=True, timeout=PYSPY_TIMEOUT_S,
                                      check=False)
                with open(path, "a") as f:
                    f.write(f"--- py-spy dump {_describe(proc)} (rc {dump.returncode}) ---\n")
                    f.write(dump.stdout + dump.stderr)
        return str(path) if path.exists() and path.stat().st_size else None

    # -- shutdown -------------------------------------------------------------------

    def kill_tree(self, grace_s: float = TERM_GRACE_S) -> list[str]:
        """SIGTERM the processes below the parent, SIGKILL what survives grace_s."""
        self.tree(_ppid_map())
        victims = self.processes()
        killed = [_describe(p) for p in victims]
        terminate(victims, grace_s)
        return killed

    def finish_parent(self, wait_s: float = PARENT_EXIT_S) -> None:
        try:
            self.obs.parent_returncode = self.parent.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.obs.parent_killed = True
            self.parent.kill()
            self.obs.parent_returncode = self.parent.wait()


def terminate(procs: list[psutil.Process], grace_s: float) -> None:
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        procs = [p for p in procs if _alive(p)]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        deadline = time.monotonic() + wait_s
        while any(_alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.02)


def pipe_block(pid: int) -> str | None:
    """Evidence that pid is blocked writing into a full pipe, or None."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return None
    if not fields or not fields[0].isdigit() or int(fields[0]) not in _WRITE_SYSCALLS:
        return None
    fd = int(fields[1], 16)
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if not target.startswith("pipe:"):
            return None
        reader = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        queued = array.array("i", [0])
        fcntl.ioctl(reader, termios.FIONREAD, queued)
        capacity = fcntl.fcntl(reader, _F_GETPIPE_SZ)
    finally:
        os.close(reader)
    # A writer blocks once every pipe page is used, which can be a little short of the
    # capacity in bytes; the kernel's own wait channel says it outright.
    if "pipe_write" not in wchan and queued[0] < capacity - _PAGE_BYTES:
        return None
    return (f"pid {pid} blocked in {_WRITE_SYSCALLS[int(fields[0])]}(fd={fd}) on {target}: "
            f"{queued[0]}/{capacity} bytes buffered, nobody reading (wchan {wchan})")


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
    try:
        syscall = Path(f"/proc/{parent_pid}/syscall").read_text().split()
    except OSError:
        return []
    if not syscall or not syscall[0].isdigit() or int(syscall[0]) not in _READ_SYSCALLS:
        return []
    parent_pipes = _pipes(parent_pid)
    found = []
    for proc in tree:
        shared = parent_pipes & _pipes(proc.pid)
        if shared:
            found.append(f"the child exited but {_describe(proc)} still holds "
                         f"{', '.join(sorted(shared))} open; the parent is blocked in "
                         f"{_READ_SYSCALLS[int(syscall[0])]} waiting for EOF")
    return found


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
        children = _ppid_map()
        sample_gpu = now >= self._next_gpu
        if sample_gpu:
            self._next_gpu = now + GPU_SAMPLE_EVERY_S
        finished = []
        for watch in self.running:
            watch.sample(now, children)
            if sample_gpu:
                watch.gpu.sample({p.pid for p in watch.tree()})
            if watch.parent.poll() is not None:
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
        obs.stack_dump = watch.dump_stacks()
    watch.kill_tree()
    watch.finish_parent()
    _settle(watch, now)


def _settle(watch: Watch, now: float) -> None:
    """The parent has exited: anything of the launch still alive is a straggler; kill it."""
    obs = watch.obs
    if obs.parent_returncode is None:
        obs.parent_returncode = watch.parent.wait()
    obs.duration_s = round(now - watch.t0, 3)
    obs.stragglers = watch.kill_tree(grace_s=0.5)
    obs.timeline["reaped"] = time.time()
    if watch.pidfd is not None:
        os.close(watch.pidfd)
        watch.pidfd = None
    obs.orphans = [_describe(p) for p in marked(watch.marker)] + [
        _describe(p) for p in watch.known.values() if _alive(p)]
    watch.done = True
