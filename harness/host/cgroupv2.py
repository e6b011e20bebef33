"""cgroup v2 delegation: the cgroup under which this process may make launch groups.

cgroup v2 lets a non-root cgroup hand a controller (pids) to its children only while
it has no processes of its own (the "no internal processes" rule). Inside a container,
a pod or a systemd service the harness sits in such a cgroup beside other processes,
so, like container runtimes and systemd, it first moves every process of its cgroup
into a leaf (`harness.leaf`), then enables pids there and makes launch groups beside
the leaf. The limits of every ancestor (a pod's pids.max, a slice's TasksMax) still
apply to them. Stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HostError

LEAF = "harness.leaf"  # not "harness-...": that prefix names launch groups
FIX = ("run the harness as root, or in a cgroup delegated to you (systemd-run --user "
       "--scope -p Delegate=yes harness ...), or give the budget as RLIMIT_NPROC "
       "(--run-as USER, or as a non-root user)")




def mount_point(mountinfo: str) -> Path | None:
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - cgroup2 " in line and len(fields) > 4:
            return Path(fields[4])
    return None


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _procs(cgroup: Path) -> list[int]:
    return [int(p) for p in _words(cgroup / "cgroup.procs")]


def home(mount: Path, own_path: str) -> Path:
    """This process's cgroup, or the one it made its leaf in."""
    own = mount / own_path.lstrip("/")
    return own.parent if own.name == LEAF else own


def parent(mountinfo: str, own_path: str) -> Path:
    """The directory under which launch groups with a pids limit can be made."""
    mount = mount_point(mountinfo)
    if mount is None:
        raise HostError("no cgroup2 hierarchy is mounted")
    own = home(mount, own_path)
    if "pids" in _words(own / "cgroup.subtree_control"):
        return _writable(own)
    if "pids" not in _words(own / "cgroup.controllers"):
        raise HostError(f"the pids controller is not delegated to {own}: {FIX}")
    _writable(own)
    if own != mount and _procs(own):
        _into_leaf(own)
    try:
        (own / "cgroup.subtree_control").write_text("+pids")
    except OSError as exc:
        raise HostError(f"cannot enable pids in {own}: {exc.strerror}; {FIX}") from exc
    return own


def _writable(own: Path) -> Path:
    if not os.access(own, os.W_OK):
        raise HostError(f"{own} is not writable by uid {os.getuid()}: {FIX}")
    return own


def _into_leaf(own: Path) -> None:
    """Move every process of own into own/harness.leaf (the harness among them)."""
    leaf = own / LEAF
    try:
        leaf.mkdir(exist_ok=True)
        for pid in _procs(own):
            try:
                (leaf / "cgroup.procs").write_text(str(pid))
            except ProcessLookupError:
                continue
    except OSError as exc:
        raise HostError(
            f"cannot move the processes of {own} into {leaf} ({exc.strerror}): cgroup v2 "
            f"lets only a cgroup without processes of its own give pids to children; "
            f"{FIX}") from exc
