"""The live task budget: how many more threads/processes may start here, and why.

The tightest of: this process's pids cgroup (a container's or systemd unit's
TasksMax), RLIMIT_NPROC for non-root users (counts every thread of the uid), and
the kernel's threads-max. Used by the Phase 2 runner's admission control and by
`harness doctor`.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from harness import cgroup
from harness.limits import uid_tasks


@dataclass(frozen=True)
class Limit:
    source: str  # "pids cgroup" | "RLIMIT_NPROC" | "kernel threads-max"
    limit: int
    in_use: int
    detail: str

    @property
    def headroom(self) -> int:
        return self.limit - self.in_use


def _total_threads() -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                total += len(os.listdir(entry / "task"))
            except OSError:
                continue
    return total


def live_limits() -> list[Limit]:
    """Every task limit that applies to children of this process, as they stand now."""
    found = []
    group = cgroup.cgroup_of()
    if group is not None and group.max is not None:
        found.append(Limit("pids cgroup", group.max, group.current or 0,
                           f"{group.path} (v{group.version})"))
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if os.getuid() != 0 and soft != resource.RLIM_INFINITY:
        found.append(Limit("RLIMIT_NPROC", soft, uid_tasks(os.getuid()),
                           f"uid {os.getuid()}, all its threads"))
    threads_max = int(Path("/proc/sys/kernel/threads-max").read_text())
    found.append(Limit("kernel threads-max", threads_max, _total_threads(),
                       "/proc/sys/kernel/threads-max"))
    return found


def tightest() -> Limit:
    return min(live_limits(), key=lambda lim: lim.headroom)
