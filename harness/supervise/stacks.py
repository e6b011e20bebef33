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

from harness.host.proctree import describe
from harness.supervise.files import LaunchFiles
from harness.workload import events as ev

PYSPY_TIMEOUT_S = 20.0
STACK_SIGNAL_WAIT_S = 0.5


def _faulthandler(files: LaunchFiles) -> None:
    start = next((e for e in ev.read_events(files.events) if e["event"] == ev.START), None)
    if not (start and start.get("stack_signal") and psutil.pid_exists(start["pid"])):
        return
    with open(files.stacks, "a") as f:
        f.write(f"--- faulthandler ({start['stack_signal']}) pid {start['pid']} ---\n")
    try:
        os.kill(start["pid"], getattr(signal, start["stack_signal"]))
        time.sleep(STACK_SIGNAL_WAIT_S)
    except (ProcessLookupError, AttributeError):
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
        with open(files.stacks, "a") as f:
            f.write(f"--- py-spy dump {describe(proc)} (rc {dump.returncode}) ---\n")
            f.write(dump.stdout + dump.stderr)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        return f"({exc.strerror})"


def _kernel(files: LaunchFiles, procs: list[psutil.Process]) -> None:
    """Where each process is in the kernel: blocked (a wait channel) or running (none)."""
    with open(files.stacks, "a") as f:
        for proc in procs:
            base = f"/proc/{proc.pid}"
            f.write(f"--- kernel view of {describe(proc)}: wchan {_read(base + '/wchan')}, "
                    f"syscall {_read(base + '/syscall')} ---\n{_read(base + '/stack')}\n")


def dump(files: LaunchFiles, procs: list[psutil.Process]) -> str | None:
    """Dump what procs are doing into files.stacks; its path, or None if nothing came."""
    _faulthandler(files)
    _pyspy(files, procs)
    _kernel(files, procs)
    path = files.stacks
    return str(path) if path.exists() and path.stat().st_size else None
