"""The verdict on logs from a run that did not go through the harness (a production
Phase 2, a CI job, a pasted log): did a thread or process fail to be created, in whose
words, on which lines, and what the errno suggests ran out.

Files are read as untrusted input and streamed line by line (hundreds of MB in bounded
memory); a directory is walked without following links; binary files are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from harness import untrusted
from harness.verdict import exhaustion
from harness.verdict.verdicts import Verdict

MAX_SHOWN = 20  # matching lines kept per file; the rest are counted
BINARY_PROBE_BYTES = 8192
SUGGESTS = {
    "EAGAIN": "a task limit ran out: a pids cgroup (container --pids-limit, Kubernetes pod "
              "pid limit, systemd TasksMax), RLIMIT_NPROC (ulimit -u) for a non-root user, "
              "or the kernel's threads-max",
    "ENOMEM": "address space (RLIMIT_AS with large thread stacks), the kernel's pid_max, or "
              "memory for a new task",
    "EPERM": "a seccomp or container policy refused the thread (clone/clone3: an old "
             "container runtime with a newer glibc)",
    "cap": "the runtime's own cap on threads: raise it in the runtime",
    "unknown": "the text does not say which limit",
}


@dataclass
class FileDiagnosis:
    path: str
    verdict: Verdict | None = None  # thread_exhaustion, or None: nothing found
    matches: list[dict] = field(default_factory=list)  # first MAX_SHOWN: line, text, ...
    total: int = 0  # matching lines in all
    runtimes: list[str] = field(default_factory=list)
    errno: str | None = None  # of the first match
    suggests: str | None = None
    skipped: str | None = None  # why the file was not read (binary, not a regular file)

    def record(self) -> dict:
        return asdict(self)


def judge(path: str, lines: Iterable[str]) -> FileDiagnosis:
    found = FileDiagnosis(path)
    for match in exhaustion.find_all(lines):
        found.total += 1
        if len(found.matches) < MAX_SHOWN:
            found.matches.append({"line": match.number, "text": match.line,
                                  "runtime": match.runtime, "rule": match.rule,
                                  "errno": match.errno})
        if match.runtime not in found.runtimes:
            found.runtimes.append(match.runtime)
    if found.total:
        found.verdict = Verdict.THREAD_EXHAUSTION
        found.errno = found.matches[0]["errno"]
        found.suggests = SUGGESTS[found.errno]
    return found


def looks_binary(probe: bytes) -> bool:
    """A program, an archive, an image: control bytes or broken UTF-8 in the text that
    is there. NUL runs alone are not binary: copytruncate (logrotate) and a log cap leave
    a hole of NULs before the text that follows it."""
    text = probe.replace(b"\0", b"")
    if not text:
        return False
    controls = sum(1 for b in text if b < 32 and b not in b"\t\n\r\f\v\b\x1b")
    broken = text.decode(errors="replace").count("\ufffd")
    return controls > len(text) // 20 or broken > len(text) // 50 + 2


def _probe(f: BinaryIO) -> bytes:
    """The first bytes of data, past a sparse hole (SEEK_DATA) where the file has one."""
    try:
        f.seek(os.lseek(f.fileno(), 0, os.SEEK_DATA))
    except OSError:  # no data at all, or no SEEK_DATA here
        f.seek(0)
    probe = f.read(BINARY_PROBE_BYTES) or b""
    f.seek(0)
    return probe


def diagnose_file(path: Path) -> FileDiagnosis:
    with untrusted.opened(path) as f:
        if f is None:
            return FileDiagnosis(str(path), skipped="not a regular file (a link, a FIFO?)")
        try:
            if looks_binary(_probe(f)):
                return FileDiagnosis(str(path), skipped="binary")
        except OSError as exc:
            return FileDiagnosis(str(path), skipped=f"unreadable: {exc.strerror or exc}")
        return judge(str(path), untrusted.stream_lines(f))


def diagnose_stream(name: str, stream: BinaryIO) -> FileDiagnosis:
    return judge(name, untrusted.stream_lines(stream))


def walk(root: Path) -> Iterator[Path]:
    """Every file under root, in order, without following links (a Phase 2 OUT/evals tree,
    a folder of job logs)."""
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            yield Path(here, name)
