"""Probes: did device work start, did the run complete? Read from what the child left.

The reference workload writes lifecycle events; a foreign command is matched
with --work-pattern / --done-pattern on its output. GPU work is observed
separately by NVML while the launch runs (see gpuwork.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.workload import events as ev

TAIL_BYTES = 4096


def tail(path: str | Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a file as text ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def search_file(path: str | Path, pattern: re.Pattern[str], chunk: int = 1 << 20) -> str | None:
    """First line matching pattern, streaming (logs can be many MB)."""
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if pattern.search(line):
                    return line.rstrip("\n")
    except OSError:
        return None
    return None


@dataclass
class Observed:
    """What the probes saw: None means the probe could not tell."""

    work_started: bool | None = None
    completed: bool | None = None
    events: list[str] = field(default_factory=list)
    devices: dict | None = None
    start: dict | None = None
    failed: str | None = None
    evidence: list[str] = field(default_factory=list)


def observe(events_path: Path, logs: list[Path], work_pattern: str | None,
            done_pattern: str | None) -> Observed:
    records = ev.read_events(events_path)
    seen = Observed(events=[r["event"] for r in records])
    if records:
        by_name = {r["event"]: r for r in records}
        seen.work_started = ev.WORK_STARTED in by_name
        seen.completed = ev.COMPLETED in by_name
        seen.start = by_name.get(ev.START)
        devices = by_name.get(ev.DEVICES)
        if devices is not None:
            seen.devices = {k: devices.get(k) for k in ("kind", "names", "replicas",
                                                        "physical_gpus", "threads")}
            # The program's own account: per-device bytes, at completion where it got there.
            done = by_name.get(ev.COMPLETED) or {}
            seen.devices["device_bytes"] = done.get("device_bytes",
                                                    devices.get("device_bytes"))
        if ev.FAILED in by_name:
            seen.failed = by_name[ev.FAILED].get("reason")
    for name, pattern in (("work_started", work_pattern), ("completed", done_pattern)):
        if pattern is None:
            continue
        compiled = re.compile(pattern)
        line = next((hit for log in logs if (hit := search_file(log, compiled))), None)
        setattr(seen, name, bool(getattr(seen, name)) or line is not None)
        if line is not None:
            seen.evidence.append(f"{name} pattern matched: {line[:200]}")
    return seen


def read_metrics(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
