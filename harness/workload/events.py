"""Lifecycle events: one JSON object per line, flushed per line, each with `event` and `t`.

The workload writes them; probes read them. Kept TensorFlow-free.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from harness import untrusted

START = "start"
DEVICES = "devices"
WORK_STARTED = "work_started"
FOLD_DONE = "fold_done"
COMPLETED = "completed"
FAILED = "failed"
REPORT = "report"  # intermediate metrics: {"event": "report", "step": N, "metrics": {...}}
ORDER = (START, DEVICES, WORK_STARTED, FOLD_DONE, COMPLETED)


class EventLog:
    """Append-only JSON-lines writer; a no-op without a path."""

    def __init__(self, path: str | Path | None) -> None:
        self._file: TextIO | None = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def emit(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"event": event, "t": time.time(), **fields}
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


MAX_NAME = 64


def is_event(record: dict) -> bool:
    """An event as the protocol has it: a short string name and a finite time."""
    name = record.get("event")
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME and \
        untrusted.real_number(record.get("t"))


def read_checked(path: str | Path) -> tuple[list[dict], int]:
    """(every complete, well-formed event in the file, how many records were not): a torn
    last line (child killed mid-write) or a malformed record (what a child writes is
    untrusted) is skipped, never trusted."""
    records = untrusted.read_jsonl(path, "event")
    events = [r for r in records if is_event(r)]
    return events, len(records) - len(events)


def read_events(path: str | Path) -> list[dict]:
    return read_checked(path)[0]


def report_of(event: dict) -> tuple[int, dict] | None:
    """(step, metrics) of a well-formed report event; None for anything else (a child's
    malformed report is counted by the caller and ignored)."""
    step, metrics = event.get("step"), event.get("metrics")
    if event.get("event") != REPORT or not isinstance(step, int) or isinstance(step, bool) \
            or not isinstance(metrics, dict):
        return None
    kept = {k: v for k, v in metrics.items() if isinstance(k, str) and len(k) <= MAX_NAME
            and untrusted.real_number(v)}
    return step, kept


def read_new(path: str | Path, offset: int) -> tuple[list[dict], int]:
    """The well-formed events written since `offset`, and the offset to read from next: a
    line not yet ended (a child mid-write) is left for the next read. Work per call is what
    was appended, not the file's whole length (a run reads its children's events every
    tick)."""
    found: list[dict] = []
    with untrusted.opened(path) as f:
        if f is None:
            return found, offset
        try:
            f.seek(offset)
            while (line := f.readline(untrusted.MAX_LINE_BYTES)).endswith(b"\n"):
                offset += len(line)
                try:
                    record = untrusted.loads(line)
                except ValueError:
                    continue
                # a report needs no time: {"event": "report", "step": N, "metrics": {...}}
                if isinstance(record, dict) and (is_event(record)
                                                 or record.get("event") == REPORT):
                    found.append(record)
        except OSError:
            pass
    return found, offset
