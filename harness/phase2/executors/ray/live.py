"""A running attempt's events, live at the driver, so a search's pruner can stop a trial
on a cluster as it does a local one.

On the node, a Forwarder tails the attempt's events.jsonl and pushes the complete lines
appended since its last push (raw bytes, with their offset) to the driver's tracker
actor every PUSH_S; its last push is awaited before the Ray task returns, so the
tracker holds every line the node read by the time the driver sees the task end. The
driver takes what arrived each poll and appends it to a Spool file of its own: a
byte-for-byte prefix of the node's file, which the Pool reads as it reads a local
child's events (the same offsets, the same checks). Everything here is what a child
wrote: untrusted, bounded (LIVE_LIMIT bytes per attempt), parsed only by the reader.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from harness import untrusted

PUSH_S = 0.5  # how often a node pushes what its child appended
CHUNK = 64 << 10  # bytes read per look
LIVE_LIMIT = 1 << 20  # bytes of one attempt's events followed live (as many as come back)

Send = Callable[[int, bytes, bool], object]  # (offset, data, last)


class Forwarder:
    """On the node: the lines a child appends to `path`, pushed to send() as they come."""

    def __init__(self, path: Path, send: Send) -> None:
        self.path, self.send = path, send
        self.offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="harness-live", daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.push(last=True)

    def _loop(self) -> None:
        while not self._stop.wait(PUSH_S):
            self.push(last=False)

    def push(self, last: bool) -> None:
        """Send the complete lines appended since the last push (all of them: a look reads
        CHUNK at most, so one push may take several looks); a send that fails (the driver
        is gone) ends nothing but the forwarding."""
        while (data := self._new()) or last:
            try:
                self.send(self.offset - len(data), data, last and len(data) < CHUNK)
            except Exception:  # the tracker died with its driver: the attempt goes on
                self._stop.set()
                return
            if not data or len(data) < CHUNK:
                return

    def _new(self) -> bytes:
        """Complete lines from the offset on (a line not ended yet waits for the next look;
        a piece of CHUNK without an end goes as it is, so the offsets stay the file's)."""
        room = LIVE_LIMIT - self.offset
        if room <= 0:
            return b""
        with untrusted.opened(self.path) as f:  # never a link the child planted
            if f is None:
                return b""
            try:
                f.seek(self.offset)
                data = f.read(min(CHUNK, room))
            except OSError:
                return b""
        if len(data) < min(CHUNK, room):
            data = data[:data.rfind(b"\n") + 1]
        self.offset += len(data)
        return data


Ids = list[tuple[str, int]]  # (evaluation key, attempt)
Take = Callable[[Ids, Ids], dict[tuple[str, int], bytes]]  # the tracker's take(), called


class Received:
    """At the driver's tracker: each attempt's bytes not taken yet, accepted only where
    they continue what came before, LIVE_LIMIT in all."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], bytearray] = {}

    def append(self, key: str, attempt: int, offset: int, data: bytes) -> None:
        seen = self._seen.get((key, attempt), 0)
        if offset != seen or not isinstance(data, bytes) or seen + len(data) > LIVE_LIMIT:
            return  # a gap, a repeat or too much: nothing a reader could place
        self._seen[(key, attempt)] = seen + len(data)
        self._pending.setdefault((key, attempt), bytearray()).extend(data)

    def take(self, running: Ids, ended: Ids) -> dict[tuple[str, int], bytes]:
        """What arrived for these attempts since the last take; the ended ones (all their
        lines are in) are forgotten after."""
        taken = {k: bytes(self._pending.pop(k)) for k in running + ended if k in self._pending}
        for k in ended:
            self._seen.pop(k, None)
        return taken


class Spool:
    """At the driver: one file per followed attempt, what its node pushed so far, in a
    directory of the run's own (OUT/live, 0700), removed with the executor, and at the
    start where a killed driver left one. An ended attempt's file stays until the next
    pull: the Pool reads the rest of it when the attempt is reported."""

    def __init__(self, take: Take, directory: Path) -> None:
        self.take, self.dir = take, directory
        self.close()
        self.dir.mkdir(mode=0o700, parents=True)
        self._ended: Ids = []

    def path(self, key: str, attempt: int) -> Path:
        return self.dir / f"{key}.{attempt}.jsonl"

    def pull(self, running: Ids, ended: Ids) -> None:
        """What the nodes pushed since the last pull; all of the ended attempts' (their
        nodes awaited their last push before returning). A tracker that does not answer
        (take raises) is asked again next time."""
        for key, attempt in self._ended:
            with contextlib.suppress(FileNotFoundError):
                self.path(key, attempt).unlink()
        self._ended = list(ended)  # dropped next pull, even if this take fails
        for (key, attempt), data in self.take(running, ended).items():
            self._add(self.path(key, attempt), data)

    @staticmethod
    def _add(path: Path, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "ab") as f:
            if f.tell() + len(data) <= LIVE_LIMIT:
                f.write(data)

    def close(self) -> None:
        if self.dir.is_symlink():  # never a link: removed, not followed
            self.dir.unlink()
        shutil.rmtree(self.dir, ignore_errors=True)
