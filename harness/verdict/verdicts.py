"""Verdicts: what a launch's evidence says happened, and how people see each one.

`Verdict` is a `str` Enum, so records and JSON keep the plain names ("ok",
"thread_exhaustion", ...) while code gets one closed set to match against.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Verdict(str, Enum):
    OK = "ok"
    THREAD_EXHAUSTION = "thread_exhaustion"
    HANG = "hang"
    PIPE_DEADLOCK = "pipe_deadlock"
    TIMEOUT = "timeout"
    CRASH = "crash"
    ERROR = "error"
    NO_GPU_WORK = "no_gpu_work"
    LAUNCH_ERROR = "launch_error"
    NODE_LOST = "node_lost"  # the cluster node or worker running it died (not its fault)

    # The value, never "Verdict.OK", wherever a verdict is printed or formatted.
    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def style(self) -> str:
        """The rich style every table and progress line uses for this verdict."""
        return _STYLE[self]


_STYLE = {
    Verdict.OK: "green", Verdict.THREAD_EXHAUSTION: "bold red", Verdict.HANG: "magenta",
    Verdict.PIPE_DEADLOCK: "magenta", Verdict.TIMEOUT: "yellow", Verdict.CRASH: "red",
    Verdict.ERROR: "red", Verdict.NO_GPU_WORK: "yellow", Verdict.LAUNCH_ERROR: "red",
    Verdict.NODE_LOST: "cyan",
}
VERDICTS = tuple(v.value for v in Verdict)


def styled(verdict: str) -> str:
    """rich markup for a verdict (an unknown name, e.g. from an old file, stays white)."""
    style = Verdict(verdict).style if verdict in VERDICTS else "white"
    return f"[{style}]{verdict}[/]"


def tally(verdicts: Iterable[str]) -> dict[str, int]:
    """verdict -> count, in the order verdicts first appear."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[str(verdict)] = counts.get(str(verdict), 0) + 1
    return counts
