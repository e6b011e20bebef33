"""Stack dumps of a stalled launch: faulthandler through the signal the workload
registered (its `start` event names it), then py-spy for every Python process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil

from harness.files import LaunchFiles
from harness.proctree import describe
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


def dump(files: LaunchFiles, procs: list[psutil.Process]) -> str | None:
    """Dump what procs are doing into files.stacks; its path, or None if nothing came."""
    _faulthandler(files)
    _pyspy(files, procs)
    path = files.stacks
    return str(path) if path.exists() and path.stat().st_size else None
