"""pids cgroups: find the ones a process is under, make one per launch group (and one
per launch inside it), remove them.

Stdlib only: the trampoline and the workload import this before TensorFlow.
cgroup v1 (`/sys/fs/cgroup/pids/...`) is what our root CI boxes have; on cgroup v2
cgroupv2.py finds (or makes, with a leaf) a cgroup that may hand pids to children.
"""

from __future__ import annotations

import errno
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HostError
from harness.host import cgroupv2

V1_ROOT = Path("/sys/fs/cgroup/pids")
NAME_PREFIX = "harness-"
OWNER_ENV = "HARNESS_OWNER"  # a test session sets it so leftovers can be traced to it
_REMOVE_WAIT_S = 5.0




@dataclass(frozen=True)
class PidsCgroup:
    path: Path
    version: int  # 1 or 2

    def _read(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text().strip()
        except OSError:
            return None

    @property
    def max(self) -> int | None:
        """pids.max, None for "max" (unlimited) or unreadable."""
        raw = self._read("pids.max")
        return int(raw) if raw and raw != "max" else None

    @property
    def current(self) -> int | None:
        raw = self._read("pids.current")
        return int(raw) if raw else None

    @property
    def peak(self) -> int | None:
        raw = self._read("pids.peak")  # v2 on kernels >= 6.1 only
        return int(raw) if raw else None

    @property
    def events_max(self) -> int:
        """How many forks/clones this cgroup refused because pids.max was reached."""
        for line in (self._read("pids.events") or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
        return 0

    @property
    def events_local(self) -> int:
        """Refusals of forks by this cgroup's own processes: pids.events.local on v2 kernels
        that have it (6.12+), else pids.events, which counts them there on v1 and older v2."""
        name = "pids.events.local" if (self.path / "pids.events.local").exists() else \
            "pids.events"
        for line in (self._read(name) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
        return 0

    def child(self, name: str) -> PidsCgroup:
        """A cgroup inside this one, without a limit of its own (it shares this one's)."""
        if self.version == 2 and "pids" not in (self._read("cgroup.subtree_control") or ""):
            (self.path / "cgroup.subtree_control").write_text("+pids")
        path = self.path / name
        path.mkdir(exist_ok=True)
        return PidsCgroup(path, self.version)

    def tree(self) -> list[PidsCgroup]:
        """This cgroup and every cgroup below it, deepest first."""
        below = sorted((p for p in self.path.rglob("*") if p.is_dir()),
                       key=lambda p: len(p.parts), reverse=True)
        return [PidsCgroup(p, self.version) for p in below] + [self]

    def snapshot(self) -> dict:
        return {
            "path": str(self.path),
            "version": self.version,
            "max": self.max,
            "current": self.current,
            "peak": self.peak,
            "events_max": self.events_max,
        }

    def procs(self) -> list[int]:
        raw = self._read("cgroup.procs") or ""
        return [int(p) for p in raw.split()]

    def set_max(self, limit: int | None) -> None:
        (self.path / "pids.max").write_text("max" if limit is None else str(limit))

    def join(self, pid: int | None = None) -> None:
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def kill_all(self) -> list[int]:
        """SIGKILL every member of this cgroup and those below it until none is left."""
        killed: list[int] = []
        kill_file = self.path / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            killed = [pid for g in self.tree() for pid in g.procs()]
            kill_file.write_text("1")
        deadline = time.monotonic() + _REMOVE_WAIT_S
        while (members := [pid for g in self.tree() for pid in g.procs()]) \
                and time.monotonic() < deadline:
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        return sorted(set(killed))

    def remove(self) -> None:
        """rmdir this cgroup and those below it, retried while exiting members still hold
        them (EBUSY)."""
        deadline = time.monotonic() + _REMOVE_WAIT_S
        for group in self.tree():
            while True:
                try:
                    group.path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    self.kill_all()
                    time.sleep(0.02)


def _v2_mount() -> Path | None:
    """Where this process sees the cgroup2 hierarchy, or None."""
    try:
        return cgroupv2.mount_point(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return None


def membership(pid: int | str = "self") -> dict[str, str]:
    """controller -> cgroup path from /proc/PID/cgroup ("" key is the v2 hierarchy)."""
    paths: dict[str, str] = {}
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def cgroup_of(pid: int | str = "self", v1_root: Path = V1_ROOT) -> PidsCgroup | None:
    """The pids cgroup that limits PID, v1 first, else v2 where pids.max exists."""
    paths = membership(pid)
    if "pids" in paths:
        return PidsCgroup(v1_root / paths["pids"].lstrip("/"), 1)
    if "" in paths:
        mount = _v2_mount()
        if mount is not None:
            path = mount / paths[""].lstrip("/")
            if (path / "pids.max").exists():
                return PidsCgroup(path, 2)
    return None


def v2_parent(mountinfo: str, own_path: str) -> Path:
    """The v2 directory under which this process may create pids-limited children."""
    return cgroupv2.parent(mountinfo, own_path)


def _parent_dir(v1_root: Path) -> tuple[Path, int]:
    """Where launch groups are made: below this process's own pids cgroup, so a limit the
    process is already under (a container's, a systemd unit's) still applies to them."""
    if v1_root.is_dir():
        own = v1_root / membership().get("pids", "/").lstrip("/")
        if own.is_dir() and os.access(own, os.W_OK):
            return own, 1
        v1_reason = f"{own} is not writable by uid {os.getuid()}"
    else:
        v1_reason = f"{v1_root} does not exist (no cgroup v1 pids hierarchy)"
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        return v2_parent(mountinfo, membership().get("", "/")), 2
    except (HostError, OSError) as exc:
        raise HostError(f"{v1_reason}; cgroup v2: {exc}") from exc


def ancestors(pid: int | str = "self", v1_root: Path = V1_ROOT) -> list[PidsCgroup]:
    """The pids cgroups PID is under, its own first, then each parent up to the root of
    its hierarchy (v1 pids, or v2), skipping none: a limit may sit on any of them."""
    paths = membership(pid)
    if "pids" in paths:
        leaf, top, version = v1_root / paths["pids"].lstrip("/"), v1_root, 1
    elif "" in paths:
        mount = _v2_mount()
        if mount is None:
            return []
        leaf, top, version = mount / paths[""].lstrip("/"), mount, 2
    else:
        return []
    found = []
    for path in [leaf, *leaf.parents]:
        if (path / "pids.max").exists() or path == top:
            found.append(PidsCgroup(path, version))
        if path == top:
            break
    return found


def owner_pid() -> int:
    """Who answers for what a launch leaves behind: $HARNESS_OWNER, else this process."""
    value = os.environ.get(OWNER_ENV, "")
    return int(value) if value.isdigit() else os.getpid()


def create(limit: int | None, v1_root: Path = V1_ROOT) -> PidsCgroup:
    """A fresh pids cgroup named after its owner, with pids.max = limit."""
    parent, version = _parent_dir(v1_root)
    path = parent / f"{NAME_PREFIX}{owner_pid()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
    except OSError as exc:
        raise HostError(f"cannot create {path}: {exc.strerror}") from exc
    group = PidsCgroup(path, version)
    try:
        group.set_max(limit)
    except OSError as exc:  # EINVAL for a limit the kernel cannot hold: nothing left behind
        path.rmdir()
        raise HostError(f"cannot set pids.max {limit} on {path}: {exc.strerror}") from None
    return group


def leftovers(v1_root: Path = V1_ROOT, owner: int | None = None) -> list[Path]:
    """harness-made cgroups still present, optionally only those of one owner pid."""
    prefix = NAME_PREFIX if owner is None else f"{NAME_PREFIX}{owner}-"
    roots = [v1_root, v1_root / membership().get("pids", "/").lstrip("/")]
    mount = _v2_mount()
    if mount is not None:
        roots.append(cgroupv2.home(mount, membership().get("", "/")))
    found: set[Path] = set()
    for root in roots:
        if root.is_dir():
            found |= {p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)}
    return sorted(found)


def creator_of(path: Path) -> int | None:
    """The pid that made a harness cgroup: harness-OWNER-CREATOR-ID."""
    parts = path.name.removeprefix(NAME_PREFIX).split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def destroy(path: Path, v1_root: Path = V1_ROOT) -> None:
    """Kill whatever is left in a harness cgroup, then remove it."""
    group = PidsCgroup(path, 1 if path.is_relative_to(v1_root) else 2)
    group.kill_all()
    group.remove()


def reap_stale(v1_root: Path = V1_ROOT, owner: int | None = None) -> list[Path]:
    """Remove harness cgroups whose creator is gone (a runner killed with SIGKILL), killing
    anything still inside; only one owner's where `owner` is given. Returns what was
    removed."""
    removed = []
    for path in leftovers(v1_root, owner=owner):
        creator = creator_of(path)
        if creator is None or creator == os.getpid() or Path(f"/proc/{creator}").exists():
            continue
        try:
            destroy(path, v1_root)
        except OSError:
            continue
        removed.append(path)
    return removed
