"""Process trees: find every process of a launch (by ancestry or by its environment
marker, which survives reparenting) and kill them: SIGTERM, a grace period, SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

LAUNCH_MARKER_ENV = "HARNESS_LAUNCH"
KILL_WAIT_S = 5.0


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} ({' '.join(proc.cmdline())[:120] or proc.name()})"
    except psutil.Error:
        return f"pid {proc.pid}"


def ppid_map() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process now. psutil's one-shot map (what its
    Process.children() uses: one read of /proc/PID/stat each) where the platform has
    one; process_iter builds a Process per pid and reads stat twice, 3x the CPU here,
    and a supervisor asks 4 times a second beside the children it watches."""
    try:
        mapping = psutil._ppid_map()  # type: ignore[attr-defined]
    except (AttributeError, psutil.Error):  # no such map; or a hidepid=1 /proc refused one
        mapping = {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}
    children: dict[int, list[int]] = {}
    for pid, ppid in mapping.items():
        children.setdefault(ppid, []).append(pid)
    return children


def descendants(root: int, children: dict[int, list[int]]) -> list[int]:
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
        if hit and alive(proc):
            found.append(proc)
    return found


def terminate(procs: list[psutil.Process], grace_s: float) -> None:
    """SIGTERM, wait up to grace_s, then SIGKILL whatever is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        procs = [p for p in procs if alive(p)]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        deadline = time.monotonic() + wait_s
        while any(alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.02)


def vm_peak(pid: int) -> int:
    """VmPeak of /proc/PID/status in bytes (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
