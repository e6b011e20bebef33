"""What the terminal and the HTML report both say of a run, worded once: what did not
finish, and the median of each part of the evaluations' time."""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable, Sequence

SHOWN_MISSING = 20  # keys a person is shown of what did not finish; results.json has all
TIMING_NAMES = {"queued_s": "queued", "to_work_s": "start to work", "work_s": "work",
                "reap_s": "reap"}


def some(keys: Sequence[str]) -> str:
    """What did not finish, for people: every key, or the first few and how many more."""
    shown = ", ".join(keys[:SHOWN_MISSING])
    more = len(keys) - SHOWN_MISSING
    return f"{shown} and {more:,} more (results.json lists them)" if more > 0 else shown


def medians(evaluations: Iterable[dict]) -> list[tuple[str, float]]:
    """(name, median seconds) of each part of the evaluations' time that any of them has,
    in TIMING_NAMES' order (8 bytes a value: the grid may be large)."""
    values: dict[str, array] = {name: array("d") for name in TIMING_NAMES}
    for e in evaluations:
        for name, value in (e.get("timing") or {}).items():
            if name in values and value is not None:
                values[name].append(value)
    return [(TIMING_NAMES[name], statistics.median(got)) for name, got in values.items() if got]
