"""What counts as thread exhaustion: a thread or process could not be created, in the
words of whichever runtime tried (TensorFlow, glibc/pthreads, CPython, shells, the JVM,
Go, Rust, Node.js, OpenMP, OpenBLAS).

An EAGAIN about anything else (a non-blocking read, a lock, a socket) is not
evidence: a rule names the creation itself ("pthread_create", "fork:", "can't start
new thread"), or, where a runtime prints a bare errno, asks for the creating call
within a few lines around it (a traceback, a stack trace).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

CONTEXT_LINES = 8  # around a bare errno line: the traceback/stack that says who failed
_EAGAIN = r"(Resource temporarily unavailable|EAGAIN)"


@dataclass(frozen=True)
class Rule:
    runtime: str
    pattern: re.Pattern[str]
    context: re.Pattern[str] | None = None  # must match a line within CONTEXT_LINES


def _rule(runtime: str, pattern: str, context: str | None = None) -> Rule:
    return Rule(runtime, re.compile(pattern), re.compile(context) if context else None)


RULES = (
    _rule("TensorFlow", r"creation via pthread_create\(\) failed"),
    _rule("pthreads (glibc, LLVM, OpenBLAS, the JVM)",
          rf"\bpthread_create(\(\))?\b[^\n]{{0,60}}?\b(failed|{_EAGAIN})"),
    _rule("glibc", r"cannot allocate memory for thread-local data"),
    _rule("CPython", r"can't start new thread"),
    _rule("CPython", r"^(BlockingIOError|OSError): \[Errno 11\]",
          context=r"\bfork\b|_fork_exec|_execute_child|posix_spawn|_start_new_thread|"
                  r"\bPopen\b|\.start\(\)"),
    _rule("shells, C (fork)",
          rf"\b(v?fork|clone3?|posix_spawn)(\(\))?( failed)?: (retry: )?{_EAGAIN}"),
    _rule("dash, POSIX sh", r"\bCannot fork\b"),
    _rule("C++ std::thread", rf"what\(\):\s+{_EAGAIN}", context=r"std::system_error"),
    _rule("OpenMP (libgomp)", r"libgomp: Thread creation failed"),
    _rule("OpenMP (LLVM libomp)",
          r"OMP: Error #\d+: System unable to allocate necessary resources for OMP thread"),
    _rule("JVM", r"unable to create (new )?native thread"),
    _rule("Rust std", r"failed to spawn thread\b.*(code: 11\b|WouldBlock|"
                      r"Resource temporarily unavailable)"),
    _rule("Go runtime", r"failed to create new OS thread"),
    _rule("Node.js", r"^Error: EAGAIN\s*$", context=r"startThread|new Worker|uv_thread_create"),
    _rule("Node.js (libuv)", r"Assertion.*\(uv_thread_create\("),
)


@dataclass(frozen=True)
class Match:
    runtime: str
    line: str


def _windows(lines: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """(line, the lines around it) for every line, streaming (logs can be many MB)."""
    window: deque[str] = deque(maxlen=2 * CONTEXT_LINES + 1)
    for line in lines:
        window.append(line.rstrip("\n"))
        if len(window) > CONTEXT_LINES:
            centre = len(window) - 1 - CONTEXT_LINES
            yield window[centre], list(window)
    for centre in range(max(0, len(window) - CONTEXT_LINES), len(window)):
        yield window[centre], list(window)


def find_in_lines(lines: Iterable[str]) -> Match | None:
    """The first line that says a thread or process could not be created."""
    for line, around in _windows(lines):
        for rule in RULES:
            if not rule.pattern.search(line):
                continue
            if rule.context is None or any(rule.context.search(a) for a in around):
                return Match(rule.runtime, line.strip()[:300])
    return None


def find(paths: Iterable[str | Path]) -> Match | None:
    """find_in_lines over each log in turn (stderr first: that is where runtimes say it)."""
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                found = find_in_lines(f)
        except OSError:
            continue
        if found:
            return found
    return None
