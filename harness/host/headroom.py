"""The live task budget: how many more threads/processes may start here, and why.

The tightest of: every pids cgroup this process is under, its own and each ancestor's
(a container's --pids-limit, a Kubernetes pod's pid limit, a systemd slice's or unit's
TasksMax sit on ancestors), RLIMIT_NPROC for non-root users (every thread of the uid),
the kernel's threads-max and pid_max. Each limit says where it comes from and how to
raise it. Used by the Phase 2 runner's admission control, `harness phase2
node-resources` and `harness doctor`.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.host import cgroup
from harness.host.limits import uid_tasks

_SOURCES = (  # (pattern on the cgroup path, what sets such a limit, how to raise it)
    (r"kubepods", "Kubernetes pod",
     "raise the kubelet's podPidsLimit (--pod-max-pids) for the node"),
    (r"docker|containerd|crio|libpod|lxc", "container",
     "raise the container's limit (docker/podman run --pids-limit N)"),
    (r"user@\d+\.service|user-\d+\.slice", "systemd user slice",
     "raise TasksMax= of user-UID.slice (systemctl set-property user-UID.slice TasksMax=N)"),
    (r"\.(slice|service|scope)$", "systemd unit",
     "raise the unit's TasksMax= (systemctl set-property UNIT TasksMax=N)"),
)


@dataclass(frozen=True)
class Limit:
    source: str  # "pids cgroup" | "RLIMIT_NPROC" | "kernel threads-max" | "kernel pid_max"
    limit: int
    in_use: int
    detail: str
    origin: str = ""  # what set it: a pod, a container, a systemd unit, ...
    fix: str = ""

    @property
    def headroom(self) -> int:
        return self.limit - self.in_use

    def record(self) -> dict:
        return {"source": self.source, "limit": self.limit, "in_use": self.in_use,
                "headroom": self.headroom, "detail": self.detail, "origin": self.origin,
                "fix": self.fix}


def _total_threads() -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                total += len(os.listdir(entry / "task"))
            except OSError:
                continue
    return total


def origin_of(path: Path, ask_systemd: bool = False) -> tuple[str, str]:
    """(what set a limit on this cgroup, how to raise it), read from the cgroup's name;
    ask_systemd adds the unit's TasksMax (a subprocess: the doctor, not admission)."""
    for pattern, origin, fix in _SOURCES:
        if re.search(pattern, path.name):
            if origin == "systemd unit" and ask_systemd and \
                    (shown := _systemd_tasks_max(path.name)):
                origin = f"systemd unit {path.name} ({shown})"
            return origin, fix
    return "cgroup", f"raise {path}/pids.max (or run outside this cgroup)"


def _systemd_tasks_max(unit: str) -> str:
    if not shutil.which("systemctl"):
        return ""
    try:
        done = subprocess.run(["systemctl", "show", "-p", "TasksMax", unit], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def cgroup_limits(ask_systemd: bool = False) -> list[Limit]:
    """Every pids.max over this process: its own cgroup's and each ancestor's."""
    found = []
    for group in cgroup.ancestors():
        if group.max is None:
            continue
        origin, fix = origin_of(group.path, ask_systemd)
        found.append(Limit("pids cgroup", group.max, group.current or 0,
                           f"{group.path} (v{group.version})", origin, fix))
    return found


def live_limits(ask_systemd: bool = False) -> list[Limit]:
    """Every task limit that applies to children of this process, as they stand now."""
    found = cgroup_limits(ask_systemd)
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if os.getuid() != 0 and soft != resource.RLIM_INFINITY:
        found.append(Limit("RLIMIT_NPROC", soft, uid_tasks(os.getuid()),
                           f"uid {os.getuid()}, all its threads", "ulimit -u",
                           "raise `ulimit -u` (nproc in /etc/security/limits.conf)"))
    threads = _total_threads()
    for name, knob in (("threads-max", "kernel.threads-max"), ("pid_max", "kernel.pid_max")):
        value = int(Path(f"/proc/sys/kernel/{name}").read_text())
        found.append(Limit(f"kernel {name}", value, threads, f"/proc/sys/kernel/{name}",
                           "kernel", f"sysctl -w {knob}=N"))
    return found


def tightest() -> Limit:
    return min(live_limits(), key=lambda lim: lim.headroom)
