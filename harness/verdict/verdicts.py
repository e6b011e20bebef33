"""Verdicts: what a launch's evidence says happened, and how people see each one.

`Verdict` is a `str` Enum, so records and JSON keep the plain names ("ok",
"thread_exhaustion", ...) while code gets one closed set to match against. How each one
looks (its rich style on a terminal, its short name in the 100-column matrix, its colour
in the HTML pages) is one table here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import NamedTuple


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
    PRUNED = "pruned"  # a search stopped it from its reported metrics (the Pool's on_report)

    # The value, never "Verdict.OK", wherever a verdict is printed or formatted; hashed as
    # the value too, so a record's plain "ok" and Verdict.OK are one key in a set or dict.
    __str__ = str.__str__
    __hash__ = str.__hash__

    def __format__(self, format_spec: str) -> str:  # str's, not Enum's "Verdict.OK"
        return str.__format__(self, format_spec)

    @property
    def ok(self) -> bool:
        return self is Verdict.OK

    @property
    def style(self) -> str:
        """The rich style every table and progress line uses for this verdict."""
        return LOOKS[self].style

    @property
    def short(self) -> str:
        """The name in the terminal matrix (it fits 100 columns; a legend spells it out)."""
        return LOOKS[self].short

    @property
    def color(self) -> str:
        """Its colour in the HTML pages and plots."""
        return LOOKS[self].color


class Look(NamedTuple):
    style: str
    short: str
    color: str


LOOKS = {
    Verdict.OK: Look("green", "ok", "#2e7d32"),
    Verdict.THREAD_EXHAUSTION: Look("bold red", "TE", "#c62828"),
    Verdict.HANG: Look("magenta", "hang", "#8e24aa"),
    Verdict.PIPE_DEADLOCK: Look("magenta", "PD", "#6a1b9a"),
    Verdict.TIMEOUT: Look("yellow", "TO", "#f9a825"),
    Verdict.CRASH: Look("red", "crash", "#d84315"),
    Verdict.ERROR: Look("red", "err", "#546e7a"),
    Verdict.NO_GPU_WORK: Look("yellow", "noGPU", "#0277bd"),
    Verdict.LAUNCH_ERROR: Look("red", "LE", "#37474f"),
    Verdict.NODE_LOST: Look("cyan", "lost", "#00838f"),
    Verdict.PRUNED: Look("blue", "pruned", "#5c6bc0"),
}
UNKNOWN = Look("white", "?", "#9e9e9e")  # a name from an old or foreign file
VERDICTS = tuple(v.value for v in Verdict)


def look(verdict: str) -> Look:
    """How a verdict name from a record looks (an unknown one stays grey)."""
    return LOOKS[Verdict(verdict)] if verdict in VERDICTS else UNKNOWN


def styled(verdict: str) -> str:
    """rich markup for a verdict."""
    return f"[{look(verdict).style}]{verdict}[/]"


def tally(verdicts: Iterable[str]) -> dict[str, int]:
    """verdict -> count, in the order verdicts first appear."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[str(verdict)] = counts.get(str(verdict), 0) + 1
    return counts
