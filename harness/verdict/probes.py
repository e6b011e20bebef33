"""Probes: did device work start, did the run complete? Read from what the child left.

The reference workload writes lifecycle events; a foreign command is matched
with --work-pattern / --done-pattern on its output. GPU work is observed
separately by NVML while the launch runs (see gpuwork.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness import untrusted
from harness.workload import events as ev

TAIL_BYTES = 4096


def tail(path: str | Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a regular file as text ('' otherwise)."""
    return untrusted.read_text(path, limit, tail=True)


def search_file(path: str | Path, pattern: re.Pattern[str]) -> str | None:
    """First line matching pattern in the log's head or tail (logs can be many GB: a
    `done` or an error past the first 16 MiB is in the tail)."""
    return next((line.rstrip("\n") for line in untrusted.head_and_tail_lines(path)
                 if pattern.search(line)), None)


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


def _text(value: object, limit: int = 300) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _count(value: object) -> float | None:
    """A whole number >= 0 as the program wrote it (an int, or a float such as 2.0), or None."""
    return value if untrusted.real_number(value) and value == int(value) >= 0 else None


def _device_bytes(value: object) -> dict:
    """device name -> {"peak": bytes}: only names and whole numbers survive."""
    if not isinstance(value, dict):
        return {}
    return {name[:64]: {"peak": _count(b.get("peak")) or 0} for name, b in value.items()
            if isinstance(name, str) and isinstance(b, dict)}


def _devices(devices: dict, done: dict) -> dict:
    """The program's own account of its devices, each field of the type it should be."""
    names = devices.get("names")
    return {"kind": _text(devices.get("kind"), 16),
            "names": [n[:64] for n in names if isinstance(n, str)][:64]
            if isinstance(names, list) else None,
            "replicas": _count(devices.get("replicas")),
            "physical_gpus": _count(devices.get("physical_gpus")),
            "threads": _count(devices.get("threads")),
            # per-device bytes, at completion where it got there
            "device_bytes": _device_bytes(done.get("device_bytes",
                                                   devices.get("device_bytes")))}


def observe(events_path: Path, logs: list[Path], work_pattern: str | None,
            done_pattern: str | None) -> Observed:
    records, malformed = ev.read_checked(events_path)
    seen = Observed(events=[r["event"] for r in records])
    if malformed:
        seen.evidence.append(f"events.jsonl: {malformed} record(s) ignored: not an event "
                             "(a string `event` and a number `t`)")
    if records:
        by_name = {r["event"]: r for r in records}
        seen.work_started = ev.WORK_STARTED in by_name
        seen.completed = ev.COMPLETED in by_name
        seen.start = by_name.get(ev.START)
        if (devices := by_name.get(ev.DEVICES)) is not None:
            seen.devices = _devices(devices, by_name.get(ev.COMPLETED) or {})
        if ev.FAILED in by_name:
            seen.failed = _text(by_name[ev.FAILED].get("reason")) or "(no reason given)"
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
    """The metrics file a child wrote: a JSON object of plain values, else None."""
    return untrusted.read_json_object(path)
