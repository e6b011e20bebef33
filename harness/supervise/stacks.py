"""Stack dumps of a stalled launch: faulthandler through the signal the workload
registered (its `start` event names it), py-spy for every Python process, and the
kernel's view of every process (wait channel, syscall, kernel stack) for the rest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil

from harness import untrusted
from harness.host.proctree import describe
from harness.supervise.files import LaunchFiles
from harness.workload import events as ev

PYSPY_TIMEOUT_S = 20.0
STACK_SIGNAL_WAIT_S = 0.5


DUMP_SIGNALS = {"SIGUSR1": signal.SIGUSR1, "SIGUSR2": signal.SIGUSR2}  # all we ever send


def _append(files: LaunchFiles, text: str) -> None:
    """Onto stacks.txt, never through a link planted at its name."""
    out = untrusted.open_append(files.stacks)
    if out is not None:
        with out:
            out.write(text.encode(errors="replace"))


def _faulthandler(files: LaunchFiles, procs: list[psutil.Process]) -> None:
    """Ask the workload to dump its own stacks (faulthandler), through the signal its
    `start` event names. The event is the child's word: only a dump signal, and only to a
    process of this launch, whatever it says."""
    start = next((e for e in ev.read_events(files.events) if e["event"] == ev.START), None)
    if start is None:
        return
    pid, name = start.get("pid"), start.get("stack_signal")
    ours = {p.pid for p in procs}
    if name not in DUMP_SIGNALS or not isinstance(pid, int) or pid not in ours:
        if name or pid:
            _append(files, f"--- no faulthandler dump: the start event asks for "
                           f"{str(name)[:20]!r} to pid {str(pid)[:12]}, not a dump signal "
                           "to a process of this launch ---\n")
        return
    _append(files, f"--- faulthandler ({name}) pid {pid} ---\n")
    try:
        os.kill(pid, DUMP_SIGNALS[name])
        time.sleep(STACK_SIGNAL_WAIT_S)
    except ProcessLookupError:
        pass


def _pyspy(files: LaunchFiles, procs: list[psutil.Process]) -> None:
    pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(
        sys.executable))
    if not pyspy:
        return
    for proc in procs:
        try:
            if "python" not in proc.name():
                continue
        except psutil.Error:
            continue
        dump = subprocess.run([pyspy, "dump", "--pid", str(proc.pid)], capture_output=True,
                              text=True, timeout=PYSPY_TIMEOUT_S, check=False)
        _append(files, f"--- py-spy dump {describe(proc)} (rc {dump.returncode}) ---\n"
                       + dump.stdout + dump.stderr)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        return f"({exc.strerror})"


def _kernel(files: LaunchFiles, procs: list[psutil.Process]) -> None:
    """Where each process is in the kernel: blocked (a wait channel) or running (none)."""
    for proc in procs:
        base = f"/proc/{proc.pid}"
        _append(files, f"--- kernel view of {describe(proc)}: wchan {_read(base + '/wchan')}, "
                       f"syscall {_read(base + '/syscall')} ---\n{_read(base + '/stack')}\n")


def dump(files: LaunchFiles, procs: list[psutil.Process]) -> str | None:
    """Dump what procs are doing into files.stacks; its path, or None if nothing came."""
    _faulthandler(files, procs)
    _pyspy(files, procs)
    _kernel(files, procs)
    return str(files.stacks) if untrusted.read_bytes(files.stacks, 1) else None
