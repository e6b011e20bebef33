"""A launch between prepare() and release(): its launching parent, the ready handshake,
and what the parent reported when it was done."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import dataclass

from harness import envpolicy
from harness.host import cgroup
from harness.launch.command import Command
from harness.supervise.files import LaunchFiles


@dataclass
class Pending:
    """A launching parent that is starting up (setting its TF state), not yet released."""

    files: LaunchFiles
    marker: str
    proc: subprocess.Popen | None  # None until a direct launch is released
    ready_fd: int
    go: dict
    method: str
    command: Command
    ready: bool = False
    parent_env: dict[str, str] | None = None  # set for direct launches: no launching parent
    t_launch: float = 0.0
    cuda_visible_devices: str | None = None  # as the child will see it
    launch_cgroup: cgroup.PidsCgroup | None = None  # its own, inside the group's budget
    refusals: int | None = None  # its pids.events max, kept once the cgroup is gone

    def result(self, returncode: int | None, duration_s: float) -> dict | None:
        """What the launching parent reported (parent.json); for a direct launch the harness
        was the parent and writes the same record."""
        if self.parent_env is None:
            try:
                return json.loads(self.files.parent_result.read_text())
            except (OSError, ValueError):
                return None
        record = {"method": self.method, "launched_by": "harness", "returncode": returncode,
                  "via_shell": False, "launch_error": None, "t_launch": self.t_launch,
                  "t_end": self.t_launch + duration_s, "detail": {"pid": self.proc.pid}}
        self.files.parent_result.write_text(json.dumps(record, indent=2))
        return record


def write_spec(files: LaunchFiles, record: dict) -> None:
    """What the launching parent was told, for people reading the logs (redacted)."""
    files.parent_spec.write_text(envpolicy.redact(json.dumps(record, indent=2)))


def wait_ready(pendings: list[Pending], deadline: float) -> None:
    waiting = {p.ready_fd: p for p in pendings}
    while waiting and time.monotonic() < deadline:
        readable, _, _ = select.select(list(waiting), [], [], 0.2)
        for fd in readable:
            pending = waiting.pop(fd)
            pending.ready = os.read(fd, 64).startswith(b"ready")
        for fd, pending in list(waiting.items()):
            if pending.proc.poll() is not None:
                waiting.pop(fd)
    for pending in pendings:
        os.close(pending.ready_fd)
        pending.ready_fd = -1
