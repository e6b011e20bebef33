"""Lifecycle events: one JSON object per line, flushed per line, each with `event` and `t`.

The workload writes them; probes read them. Kept TensorFlow-free.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from harness import jsonio

START = "start"
DEVICES = "devices"
WORK_STARTED = "work_started"
FOLD_DONE = "fold_done"
COMPLETED = "completed"
FAILED = "failed"
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


def read_events(path: str | Path) -> list[dict]:
    """Every complete event in the file; a torn last line (child killed mid-write) is ignored."""
    return jsonio.read_jsonl(path, "event")
