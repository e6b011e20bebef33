"""Which filesystem a path is on, from /proc/self/mountinfo: the kernel's own pseudo
filesystems (proc, sysfs, devtmpfs, ...) hold live state, not files to read as logs."""

from __future__ import annotations

import os
from pathlib import Path

# Filesystems whose "files" are the kernel's live state: reading one can block, fail
# (EINVAL) or consume what it holds (/proc/kmsg).
PSEUDO = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "debugfs", "tracefs",
                    "securityfs", "cgroup", "cgroup2", "configfs", "bpf", "pstore",
                    "efivarfs", "fusectl", "mqueue", "binfmt_misc", "autofs", "rpc_pipefs"})


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def filesystem(path: str | Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem `path` is on (its deepest mount), or None if unknown."""
    try:
        target = os.path.realpath(path)
        text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    best, kind = "", None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = _unescape(fields[4])
        fstype = line.split(" - ", 1)[1].split()[0]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind
