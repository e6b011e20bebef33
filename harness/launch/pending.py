"""One launch before and while it runs: what the caller asks for (Launch), its launching
parent and the ready handshake (Pending), and what the parent reported at the end."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field

from harness import envpolicy, jsonio, untrusted
from harness.host import cgroup
from harness.launch.command import Command
from harness.launch.methods import CATALOGUE
from harness.supervise.files import LaunchFiles

PARENT_MODULE = "harness.launch.parent"  # the launching parent (python -m ...)


@dataclass(frozen=True)
class Launch:
    """One launch a caller asks a launch group for: the command, how it is started, where
    its files go, and what the caller knows before it starts."""

    command: Command
    method: str
    files: LaunchFiles
    child_env: dict[str, str] = field(default_factory=dict)  # e.g. the runner's thread caps
    grant: int | None = None  # a pids.max of its own inside the group's budget
    notes: tuple[str, ...] = ()  # evidence known before it starts (an unenforced grant)
    index: int | None = None  # its number in the caller's eyes (a sibling, an evaluation)
    condition: str | None = None  # its condition's name in the outcome, if not the group's
    calls: int = 1  # in-parent: how many times the parent runs the command itself


@dataclass
class Pending:
    """A launch once prepared: its launching parent (None for a direct launch until it is
    released), its own cgroup inside the budget, and its counts once that is gone."""

    launch: Launch
    index: int
    marker: str
    proc: subprocess.Popen | None
    ready_fd: int
    go: dict
    ready: bool = False
    parent_env: dict[str, str] | None = None  # direct launches: the env the harness starts with
    t_launch: float = 0.0
    cuda_visible_devices: str | None = None  # as the child will see it
    launch_cgroup: cgroup.PidsCgroup | None = None  # its own, inside the group's budget
    child_only: bool = False  # the launch cgroup holds the child's tree and nothing else
    grant: int | None = None  # its pids.max now (the runner may cap it while it runs)
    refusals: int | None = None  # its pids.events max, kept once the cgroup is gone
    peak: int | None = None  # its cgroup's pids.peak, kept once the cgroup is gone

    @property
    def direct(self) -> bool:
        """The harness itself is the launching parent: no extra interpreter."""
        return self.parent_env is not None

    @property
    def in_process(self) -> bool:
        """Its launching parent is the work (in-parent): no child of its own."""
        return CATALOGUE[self.launch.method].in_process

    @property
    def files(self) -> LaunchFiles:
        return self.launch.files

    @property
    def command(self) -> Command:
        return self.launch.command

    def result(self, returncode: int | None, duration_s: float) -> dict | None:
        """What the launching parent reported (parent.json); for a direct launch the harness
        was the parent and writes the same record."""
        if not self.direct:
            record = untrusted.read_json_object(self.files.parent_result)
            if record is None and self.in_process:
                # The parent was the work and died at it (an abort, a kill): its own exit
                # status is the launch's, as a direct child's would be.
                record = {"method": self.launch.method, "launched_by": "itself",
                          "returncode": returncode, "via_shell": False, "launch_error": None,
                          "t_launch": self.t_launch, "t_end": self.t_launch + duration_s,
                          "detail": {"pid": self.proc.pid if self.proc else None,
                                     "calls": self.launch.calls}}
            return record
        assert self.proc is not None  # released: the harness started the child itself
        record = {"method": self.launch.method, "launched_by": "harness",
                  "returncode": returncode, "via_shell": False, "launch_error": None,
                  "t_launch": self.t_launch, "t_end": self.t_launch + duration_s,
                  "detail": {"pid": self.proc.pid}}
        jsonio.write_json(self.files.parent_result, record)
        return record

    def keep_counts(self) -> None:
        """Read its cgroup's counters while it exists (they outlive it here)."""
        if self.launch_cgroup is not None:
            self.refusals = self.launch_cgroup.events_local
            self.peak = self.launch_cgroup.peak

    def retire(self) -> None:
        """Keep the launch's counts, remove its cgroup (a long Phase 2 run makes many)."""
        self.keep_counts()
        if self.launch_cgroup is not None:
            self.launch_cgroup.remove()
            self.launch_cgroup = None

    def counts(self) -> tuple[int, int | None]:
        """(forks refused to this launch's own processes, the kernel's peak of its tree
        where its cgroup held nothing else)."""
        if self.launch_cgroup is not None:
            self.keep_counts()
        return self.refusals or 0, self.peak if self.child_only else None


def write_spec(files: LaunchFiles, record: dict) -> None:
    """What the launching parent was told, for people reading the logs (redacted)."""
    jsonio.write_json(files.parent_spec, record, redact=envpolicy.redact_data)


def spawn_parent(files: LaunchFiles, boot: dict, record: dict, env: dict[str, str]
                 ) -> tuple[subprocess.Popen, int]:
    """Start a launching parent; (its process, the read end of its ready pipe)."""
    read_fd, write_fd = os.pipe()
    boot = {**boot, "ready_fd": write_fd}
    write_spec(files, {**boot, **record})
    with untrusted.append_or_discard(files.parent_log) as log:
        proc = subprocess.Popen([sys.executable, "-m", PARENT_MODULE, json.dumps(boot)],
                                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
                                pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    return proc, read_fd


def wait_ready(pendings: list[Pending], deadline: float) -> None:
    waiting = {p.ready_fd: p for p in pendings}
    while waiting and time.monotonic() < deadline:
        readable, _, _ = select.select(list(waiting), [], [], 0.2)
        for fd in readable:
            pending = waiting.pop(fd)
            pending.ready = os.read(fd, 64).startswith(b"ready")
        for fd, pending in list(waiting.items()):
            assert pending.proc is not None  # not direct: spawn_parent started it
            if pending.proc.poll() is not None:
                waiting.pop(fd)
    for pending in pendings:
        os.close(pending.ready_fd)
        pending.ready_fd = -1
