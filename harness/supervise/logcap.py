"""The per-launch log cap: a child that prints 3 GB must not leave 3 GB on disk. Past
the cap, the middle of stdout.log / stderr.log is punched out (a hole: no disk blocks,
reads as NULs, which every reader of logs drops), keeping the head, where a run says how
it started, and the tail, where it says how it ended; what was dropped is counted for the
outcome. The child's own file descriptor is untouched: it goes on appending."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from harness import untrusted

LOG_CAP_BYTES = 1 << 30  # the default: generous, and still not the 3 GB a loop can print
_ALIGN = 4096  # a hole frees whole blocks
_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_libc = ctypes.CDLL(None, use_errno=True)


def punch(path: Path, start: int, length: int) -> bool:
    """Free [start, start+length) of a regular file, keeping its size; False where the
    file or its filesystem cannot."""
    fd = untrusted.open_regular(path, os.O_WRONLY)
    if fd is None:
        return False
    try:
        done = _libc.fallocate(fd, _PUNCH, ctypes.c_long(start), ctypes.c_long(length))
        return done == 0
    finally:
        os.close(fd)


class LogCap:
    """One launch's logs held to `cap` bytes on disk: half at the head, half at the tail."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.dropped: dict[str, int] = {}  # log name -> bytes punched out of its middle
        self._until: dict[str, int] = {}  # log name -> where its hole ends now

    def hold(self, path: Path, size: int) -> None:
        """Called with the log's size as sampled; punches what grew past the cap."""
        if size <= self.cap:
            return
        keep = self.cap // 2
        start = -(-keep // _ALIGN) * _ALIGN
        end = (size - keep) // _ALIGN * _ALIGN
        done = self._until.get(path.name, start)
        if end > done and punch(path, done, end - done):
            self._until[path.name] = end
            self.dropped[path.name] = end - start

    def evidence(self) -> list[str]:
        return [f"log cap: {_size(n)} dropped from the middle of {name} (its first and last "
                f"{_size(self.cap // 2)} kept; --log-cap)" for name, n in
                sorted(self.dropped.items())]


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
