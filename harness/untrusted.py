"""What a child, a node or a file on disk hands the harness, read as untrusted input.

The harness runs as root and reads files a child (maybe another user's, `--run-as`) can
touch: its log dir, its events and metrics, a run's --out, the plan cache. Every such
read and every write into a launch's directory goes through here: opened without
following a link planted at the last component (O_NOFOLLOW), only regular files (never a
FIFO that blocks or a device), size-capped, and, for JSON, only objects of finite
numbers. Stdlib only: the trampoline and the workload import the harness before
TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeGuard

MAX_READ_BYTES = 16 << 20  # one log or events file read whole: more is not evidence
MAX_JSON_BYTES = 4 << 20  # metrics, a ledger line, a cache entry, a record from disk
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_regular(path: str | Path, flags: int = _READ, mode: int = 0o644) -> int | None:
    """A file descriptor for path where it is a regular file reached without following a
    link at its last component; None where it is missing, a link, a FIFO, a device or a
    directory (or cannot be opened)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    # Left non-blocking: a regular file's reads never block, and a kernel file that looks
    # like one (/proc/kmsg) then says EAGAIN instead of blocking (and consuming) forever.
    return fd


@contextlib.contextmanager
def opened(path: str | Path) -> Iterator[BinaryIO | None]:
    """The file for reading as binary, or None (see open_regular)."""
    fd = open_regular(path)
    if fd is None:
        yield None
        return
    with os.fdopen(fd, "rb") as f:
        yield f


def read_bytes(path: str | Path, limit: int = MAX_READ_BYTES, tail: bool = False) -> bytes:
    """At most `limit` bytes of a regular file (its end where tail); b"" otherwise, and
    where reading fails (EINVAL, EAGAIN from a kernel file, EIO)."""
    with opened(path) as f:
        if f is None:
            return b""
        try:
            if tail:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - limit))
            return f.read(limit) or b""
        except OSError:
            return b""


def read_text(path: str | Path, limit: int = MAX_READ_BYTES, tail: bool = False) -> str:
    return read_bytes(path, limit, tail).decode(errors="replace")


MAX_LINE_BYTES = 64 << 10  # a longer line is read in pieces: memory stays bounded


def lines(path: str | Path, limit: int | None = MAX_READ_BYTES) -> Iterator[str]:
    """The lines of a regular file, streaming, up to `limit` bytes (None: all of it; logs
    can be hundreds of MB); a line longer than MAX_LINE_BYTES comes in pieces."""
    with opened(path) as f:
        if f is not None:
            yield from stream_lines(f, limit)


def head_and_tail_lines(path: str | Path, each: int = MAX_READ_BYTES) -> Iterator[str]:
    """The lines of a log's first and last `each` bytes (all of a smaller one): where a
    run says it started and how it ended, in bounded time and memory however long it
    is. The tail starts at its first whole line."""
    with opened(path) as f:
        if f is None:
            return
        try:
            size = os.fstat(f.fileno()).st_size
        except OSError:
            return
        if size <= 2 * each:  # head and tail would overlap: all of it
            yield from stream_lines(f, 2 * each)
            return
        yield from stream_lines(f, each)
        try:
            f.seek(size - each)
            f.readline(MAX_LINE_BYTES)  # the rest of a line cut in two
        except OSError:
            return
        yield from stream_lines(f, each)


def stream_lines(f: BinaryIO, limit: int | None = None) -> Iterator[str]:
    """The lines of an open binary stream (a file, stdin), decoded, in bounded memory.
    NUL bytes are dropped: a hole that copytruncate or a log cap left reads as NULs,
    and the text after it is still the log's. A read that fails ends the lines."""
    read = 0
    while True:
        try:
            raw = f.readline(MAX_LINE_BYTES)
        except OSError:  # EAGAIN from a kernel file, EINVAL, EIO
            return
        if not raw:
            return
        read += len(raw)
        if limit is not None and read > limit:
            return
        if b"\0" in raw:
            raw = raw.replace(b"\0", b"")
            if not raw:
                continue
        yield raw.decode(errors="replace")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str | bytes) -> object:
    """json.loads without NaN/Infinity and without a RecursionError on deep nesting:
    ValueError for anything that is not plain JSON."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _has_non_finite(value):
        raise ValueError("a number out of range (inf)")
    return value


def _has_non_finite(value: object, depth: int = 0) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if depth > 64:
        return False  # json.loads already bounded the depth; stop looking
    if isinstance(value, dict):
        return any(_has_non_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v, depth + 1) for v in value)
    return False


def read_json_object(path: str | Path, limit: int = MAX_JSON_BYTES) -> dict | None:
    """A JSON object of plain values from a regular file, or None (missing, not a regular
    file, too big, not JSON, not an object)."""
    data = read_bytes(path, limit + 1)
    if not data or len(data) > limit:
        return None
    try:
        value = loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_jsonl(path: str | Path, key: str, limit: int | None = MAX_READ_BYTES) -> list[dict]:
    """Every complete object with `key` in a JSON-lines file; a line torn by a process
    killed mid-write, or anything else that is not such an object, is skipped."""
    return list(iter_jsonl(path, key, limit))


def iter_jsonl(path: str | Path, key: str, limit: int | None = MAX_READ_BYTES
               ) -> Iterator[dict]:
    """read_jsonl, streamed."""
    for line in lines(path, limit):
        try:
            record = loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and key in record:
            yield record


def real_number(value: object) -> TypeGuard[float]:
    """A finite int or float (never a bool, a string or a NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def count(value: object, top: int) -> bool:
    """A whole number in 1..top (a peak, a budget, an attempt count)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top


def create_exclusive(path: str | Path, mode: int = 0o644) -> int:
    """A new regular file, never one that is there (a link planted in its place included):
    FileExistsError otherwise."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   mode)


def open_append(path: str | Path) -> BinaryIO | None:
    """A regular file the harness writes into (samples, stacks), for appending; None where
    something else (a link, a FIFO) stands at that name."""
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK)
    return None if fd is None else os.fdopen(fd, "ab")


def append_or_discard(path: str | Path) -> BinaryIO:
    """open_append, or the null device where something other than a regular file stands
    at that name (what was written there is lost; nothing is written through a link)."""
    return open_append(path) or open(os.devnull, "ab")
