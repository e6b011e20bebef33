"""Every launch's time series, kept in its log dir as JSON lines (samples.jsonl).

The supervisor appends one sample per tick (wall time, threads and RSS of the launch's
tree, its CPU seconds, stderr size, and the budget group's pids.current / pids.max);
when the launch's outcome is known, the lifecycle marks follow (launched, work_started,
first error line, completed, killed, exited, reaped). Reports plot them; nothing else
reads them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import BinaryIO

from harness import jsonio, untrusted
from harness.supervise.files import LaunchFiles
from harness.workload import events as ev

# timeline key -> mark name, in the order a launch lives them
TIMELINE_MARKS = {"started": "launched", "stopped": "killed", "exited": "exited",
                  "reaped": "reaped"}


class Recorder:
    """Appends samples to one launch's samples.jsonl, a line each (line-buffered)."""

    def __init__(self, files: LaunchFiles) -> None:
        self._file: BinaryIO | None = untrusted.open_append(files.samples)

    def write(self, record: dict) -> None:
        """One sample; on a full disk sampling stops (the samples are a view, the run is
        not stopped for them)."""
        if self._file is None:
            return
        try:
            self._file.write(jsonio.dumps_line(record).encode())
            self._file.flush()
        except OSError:
            self.close()

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # the last flush on a full disk: lost
                file.close()


def _error_time(files: LaunchFiles, line: str | None, samples: list[dict]) -> float | None:
    """When the first error line reached stderr: the first sample that saw stderr grown
    past it (None when no sample did)."""
    if not line:
        return None
    try:
        offset = untrusted.read_bytes(files.stderr).find(line.encode(errors="replace")[:120])
    except OSError:
        return None
    if offset < 0:
        return None
    return next((s["t"] for s in samples if s.get("stderr_bytes", 0) > offset), None)


def write_marks(files: LaunchFiles, timeline: dict, error_line: str | None) -> None:
    """Append the lifecycle marks of a launch that ended."""
    samples, _ = read(files)
    seen = {e["event"]: e.get("t") for e in ev.read_events(files.events)}
    found = {name: timeline.get(key) for key, name in TIMELINE_MARKS.items()}
    found.update({"work_started": seen.get(ev.WORK_STARTED),
                  "completed": seen.get(ev.COMPLETED),
                  "first_error": _error_time(files, error_line, samples)
                  or (timeline.get("exited") if error_line else None)})
    out = untrusted.open_append(files.samples)
    if out is None:
        return
    marks = b"".join(jsonio.dumps_line({"mark": name, "t": t}).encode() for name, t in
                     sorted(((n, t) for n, t in found.items() if t), key=lambda m: m[1]))
    with contextlib.suppress(OSError), out:  # a full disk: the marks are a view only
        out.write(marks)


def read(files: LaunchFiles | Path) -> tuple[list[dict], list[dict]]:
    """(samples, marks) of one launch, from its files or its log dir."""
    files = files if isinstance(files, LaunchFiles) else LaunchFiles(Path(files))
    records = untrusted.read_jsonl(files.samples, "t")
    return ([r for r in records if "mark" not in r], [r for r in records if "mark" in r])
