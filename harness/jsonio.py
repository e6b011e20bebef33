"""JSON files that survive a crash: atomic writes, and JSON-lines reads that skip a torn
last line. Stdlib only: the workload and the launching parents import it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, text: str, durable: bool = False,
                 exclusive: bool = False) -> None:
    """A reader sees the old file or the whole new one, never half of it; durable also
    fsyncs, so the new file survives a power cut (ledger, results, metrics); exclusive
    never replaces a file that is there (FileExistsError)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, target)  # fails where target exists, even as a dangling link
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: object, durable: bool = False,
               filter_text: Callable[[str], str] | None = None,
               exclusive: bool = False) -> None:
    """Atomically write data as indented JSON; filter_text may rewrite it (redaction)."""
    text = json.dumps(data, indent=2, default=str)
    write_atomic(path, filter_text(text) if filter_text else text, durable, exclusive)


def dumps_line(record: object) -> str:
    """One JSON-lines line."""
    return json.dumps(record, default=str) + "\n"


def read_jsonl(path: str | Path, key: str) -> list[dict]:
    """Every complete object with `key` in a JSON-lines file; a line torn by a process
    killed mid-write, or anything else that is not such an object, is skipped."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and key in record:
            records.append(record)
    return records
