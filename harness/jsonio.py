"""JSON files that survive a crash: atomic writes (a reader sees the old file or the whole
new one), durable where asked. Reads of what others wrote are untrusted.py's. Stdlib
only: the workload and the launching parents import it."""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def write_atomic(path: str | Path, text: str | Iterable[str], durable: bool = False,
                 exclusive: bool = False) -> None:
    """Write through a fresh temporary file beside path (made with O_EXCL, so nothing a
    child planted there is followed), then rename it into place; durable also fsyncs, so
    the new file survives a power cut (ledger, results, metrics); exclusive never
    replaces a file that is there (FileExistsError). `text` may be pieces, written as
    they come (a results.json of 100,000 evaluations is never one string)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.writelines([text] if isinstance(text, str) else text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if exclusive:
            os.link(tmp, target)  # fails where target exists, even as a dangling link
        else:
            os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(path: str | Path, data: object, durable: bool = False,
               redact: Callable[[object], object] | None = None,
               exclusive: bool = False) -> None:
    """Atomically write data as indented JSON; redact rewrites the data before it is
    serialised (secret values, whatever characters they hold)."""
    text = json.dumps(redact(data) if redact else data, indent=2, default=str)
    write_atomic(path, text, durable, exclusive)


def dumps_line(record: object) -> str:
    """One JSON-lines line."""
    return json.dumps(record, default=str) + "\n"


def array_items(texts: Iterable[str], indent: str) -> Iterator[str]:
    """JSON texts as the items of an array written piece by piece (write_atomic): each on
    its own line at `indent`, a comma before all but the first."""
    for n, text in enumerate(texts):
        yield ("," if n else "") + "\n" + textwrap.indent(text, indent)
