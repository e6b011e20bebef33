"""Durability: OUT/run.json (what this run is), OUT/ledger.jsonl (one fsynced line per
finished evaluation: the record while a run goes) and OUT/results.json (an atomic
snapshot, streamed from the ledger, with the summary).

A runner killed with SIGKILL loses at most the evaluations in flight; `--resume`
reads the ledger and skips what finished, so nothing is lost, duplicated or
redone.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import textwrap
from array import array
from collections.abc import Iterator
from pathlib import Path

from harness import envpolicy, jsonio, untrusted
from harness.errors import InputError
from harness.phase2.layout import HARNESS_MADE, RUN_FILE, Layout
from harness.phase2.record.row import problem, result_row


def _write_identity(path: Path, identity: dict) -> None:
    """run.json, its grid streamed entry by entry (each redacted on its own), so a grid of
    100,000 is never copied whole or made one string."""
    head = {k: v for k, v in identity.items() if k != "grid"}
    head_text = json.dumps(envpolicy.redact_data(head), indent=2, default=str)
    entries = jsonio.array_items((json.dumps(envpolicy.redact_data(p), default=str)
                                  for p in identity["grid"]), "    ")
    jsonio.write_atomic(path, itertools.chain(
        [head_text[:-2], ',\n  "grid": ['], entries, ["\n  ]\n}\n"]), durable=True)


def _as_written(value: object) -> str:
    """A run.json field as its JSON text (secrets redacted, as written): 1, 1.0 and true
    render different commands, though Python calls them equal."""
    if isinstance(value, list):
        value = [envpolicy.redact_data(v) if isinstance(v, dict) else v for v in value]
    return json.dumps(value, sort_keys=True, default=str)


def _lock(path: Path) -> int:
    """An exclusive flock on OUT's lock file (the kernel releases it when this process
    dies, however it dies); InputError naming the live run that holds it."""
    fd = untrusted.open_regular(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fd is None:
        raise InputError(f"{path}: not a regular file; remove it, or choose another --out")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise InputError(f"--out {str(path.parent)!r} is in use by a live run (pid "
                         f"{holder or '?'}): wait for it to end, or choose another --out"
                         ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _bad(path: Path, why: str) -> InputError:
    return InputError(f"{path}: {why}; fix or remove it, or choose another --out")


def _check_out(out: Path, resume: bool) -> None:
    """OUT is a new or empty directory, or this harness's run (with --resume): never a
    directory of other files the run would write into."""
    run_file = out / RUN_FILE
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"bad --out {str(out)!r}: not a directory")
    if run_file.exists() and not resume:
        raise InputError(f"{str(out)!r} already holds a Phase 2 run: pass --resume to "
                         "continue it, or choose another --out")
    others = [p.name for p in out.iterdir() if p.name not in HARNESS_MADE] if out.is_dir() \
        else []
    if not run_file.exists() and others:
        raise InputError(f"--out {str(out)!r} is not empty and holds no Phase 2 run "
                         f"({RUN_FILE}): its files could be overwritten; choose an empty "
                         "or new directory")


def _previous(run_file: Path) -> dict:
    """run.json as this harness wrote it, or InputError naming it."""
    previous = untrusted.read_json_object(run_file)
    if previous is None:
        raise _bad(run_file, "not a JSON object")
    for field, kind in (("template", list), ("grid", list), ("strategy", str)):
        if not isinstance(previous.get(field), kind):
            raise _bad(run_file, f"its {field!r} is not a {kind.__name__}")
    return previous


class Ledger:
    """OUT/ledger.jsonl, and where in it each evaluation's latest line is: one 8-byte offset
    per evaluation, so the runner holds no finished record in memory."""

    def __init__(self, out: Path, size: int) -> None:
        self.out, self.path = out, Layout(out).ledger
        self._at = array("q", [-1]) * size  # evaluation index -> offset of its latest line
        # A search's (a Pool's): evaluations are numbered as they are submitted, so the
        # ledger grows with them (run.json's grid is empty).
        self.growable = size == 0
        self._lock_fd: int | None = None

    def close(self) -> None:
        """Let another run use OUT (a process that dies releases it all the same)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @classmethod
    def open(cls, out: Path, identity: dict, resume: bool) -> Ledger:
        """Check OUT against this run before anything launches; nothing half-written. One
        run per OUT: the lock is held until this process ends."""
        run_file = out / RUN_FILE
        _check_out(out, resume)
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise InputError(f"bad --out {str(out)!r}: {exc.strerror}") from None
        lock = _lock(Layout(out).lock)
        if resume and run_file.exists():
            previous = _previous(run_file)
            for field in ("template", "grid", "strategy"):
                if _as_written(previous.get(field)) != _as_written(identity.get(field)):
                    raise InputError(f"--resume: {str(out)!r} holds a run with a different "
                                     f"{field}; choose another --out")
        ledger = cls(out, len(identity["grid"]))
        ledger._lock_fd = lock
        if resume:
            ledger._index()
        if not run_file.exists():
            _write_identity(run_file, identity)
        return ledger

    def _index(self) -> None:
        """Where each evaluation's latest line is; a torn last line (killed mid-write) is
        ignored; any other line that is not a finished evaluation's record is InputError
        naming it."""
        for number, offset, line, last in _lines(self.path):
            try:
                record = untrusted.loads(line)
            except ValueError:
                if last and not line.endswith(b"\n"):
                    os.truncate(self.path, offset)  # torn by a kill mid-write: the next
                    continue  # line must not start inside it
                raise _bad(self.path, f"line {number} is not JSON") from None
            why = problem(record)
            index = record.get("index", -1) if isinstance(record, dict) else -1
            if why is None and self.growable and 0 <= index < 10**7:
                self._grow(index)
            if why is None and not 0 <= index < len(self._at):
                why = "its index is not one of this grid's"
            if why is not None:
                raise _bad(self.path, f"line {number} is not a finished evaluation ({why})")
            self._at[index] = offset
            if last and not line.endswith(b"\n"):  # whole, but its newline was cut off
                with open(self.path, "ab") as f:
                    f.write(b"\n")

    def has(self, index: int) -> bool:
        """Whether this evaluation has finished (it has a line that counts)."""
        return 0 <= index < len(self._at) and self._at[index] >= 0

    def indices(self) -> list[int]:
        """The finished evaluations' indices, in grid order."""
        return [i for i, at in enumerate(self._at) if at >= 0]

    def forget(self, index: int) -> None:
        """Run this evaluation again (--retry-failed): its old line no longer counts."""
        self._at[index] = -1

    def row(self, index: int) -> dict | None:
        at = self._at[index]
        if at < 0:
            return None
        with open(self.path, "rb") as f:
            f.seek(at)
            return json.loads(f.readline())

    def rows(self) -> Iterator[dict]:
        """The latest line of every evaluation that has one, in grid order, streamed."""
        if not any(at >= 0 for at in self._at):
            return
        with open(self.path, "rb") as f:
            for at in self._at:
                if at >= 0:
                    f.seek(at)
                    yield json.loads(f.readline())

    def append(self, record: dict) -> None:
        line = json.dumps(envpolicy.redact_data(record), default=str) + "\n"
        with open(self.path, "a") as f:
            offset = f.tell()
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if self.growable:
            self._grow(record["index"])
        self._at[record["index"]] = offset

    def _grow(self, index: int) -> None:
        if index >= len(self._at):
            self._at.extend([-1] * (index + 1 - len(self._at)))

    @property
    def size(self) -> int:
        """How many evaluations the ledger has places for (a search's: so far)."""
        return len(self._at)

    def write_results(self, summary: dict) -> None:
        """results.json: every finished evaluation in grid order, streamed from the ledger
        into the file, and the summary (its missing keys streamed too: all of a large grid's
        in an early snapshot); atomically, durably, redacted (the ledger's lines were
        redacted as they were appended; keys are hex)."""
        rest = {k: v for k, v in summary.items() if k != "missing"}
        summary_text = json.dumps(envpolicy.redact_data(rest), indent=2, default=str)
        missing = jsonio.array_items((json.dumps(key) for key in summary.get("missing") or ()),
                                 "      ")
        jsonio.write_atomic(Layout(self.out).results, itertools.chain(
            ['{\n  "evaluations": ['], self._result_rows(),
            ['\n  ],\n  "summary": ', textwrap.indent(summary_text, "  ").lstrip()[:-4],
             ',\n    "missing": ['], missing, ["\n    ]\n  }\n}\n"]), durable=True)

    def _result_rows(self) -> Iterator[str]:
        return jsonio.array_items((json.dumps(result_row(row), indent=2, default=str)
                                   for row in self.rows()), "    ")


def _lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """(number, offset, line, is it the last) of every line of a regular file."""
    with untrusted.opened(path) as f:
        if f is None:
            return
        offset, number, line = 0, 0, f.readline()
        while line:
            following = f.readline()
            number += 1
            yield number, offset, line, not following
            offset += len(line)
            line = following


# A ledger line's fields and what each must be: what --resume and results.json read.
