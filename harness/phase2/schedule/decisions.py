"""The runner's decision log: every admission, retry and need it decided, in order, with
when; streamed to OUT/decisions.jsonl once the run has its OUT."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from harness import jsonio, untrusted

SHOWN_DECISIONS = 1000  # in results.json and the report; decisions.jsonl keeps them all


class DecisionLog:
    """The runner's decisions in order, each with when it was taken: in memory, or, once a
    run has its OUT, streamed to OUT/decisions.jsonl (a grid of 100,000 evaluations takes
    as many admission decisions; the runner keeps only the last)."""

    def __init__(self) -> None:
        self._kept: list[tuple[float, str]] = []
        self.path: Path | None = None
        self.last: str | None = None

    def stream_to(self, path: Path, keep: bool = False) -> None:
        """From now on into path, with what was decided before; keep: after what path
        holds (a resumed run's decisions follow the first run's), else emptied."""
        self.path = path
        with open(path, "a" if keep else "w") as f:
            f.writelines(jsonio.dumps_line({"t": t, "decision": d}) for t, d in self._kept)
        self._kept = []

    def note(self, decision: str | None) -> None:
        """Record a decision, once when the same one repeats (a wait across ticks); None
        is nothing decided."""
        if decision is not None and self.last != decision:
            self.add(decision)

    def decide(self, decision: str) -> None:
        """Record a decision and when it was taken (the run's report marks it)."""
        self.add(decision)

    @property
    def decisions(self) -> list[str]:
        return [text for _, text in self]

    def add(self, decision: str) -> None:
        self.last = decision
        if self.path is None:
            self._kept.append((time.time(), decision))
            return
        with open(self.path, "a") as f:
            f.write(jsonio.dumps_line({"t": time.time(), "decision": decision}))

    def __iter__(self) -> Iterator[tuple[float, str]]:
        if self.path is None:
            yield from self._kept
            return
        for record in untrusted.iter_jsonl(self.path, "decision", limit=None):
            t = record.get("t")  # the file is in OUT: anyone's to edit
            yield (t if untrusted.real_number(t) else 0.0), str(record["decision"])

    def shown(self, limit: int = SHOWN_DECISIONS) -> list[tuple[float, str]]:
        """The decisions people are shown: all of them, or past `limit` its first and last
        halves with a line that says how many are left out (decisions.jsonl has them)."""
        first: list[tuple[float, str]] = []
        last: deque[tuple[float, str]] = deque(maxlen=limit // 2)
        count = 0
        for item in self:
            count += 1
            if len(first) < limit // 2:
                first.append(item)
            else:
                last.append(item)
        if count <= limit:
            return [*first, *last]
        gap = (last[0][0], f"... {count - len(first) - len(last)} more decisions: "
                           f"{self.path.name if self.path else 'the log'} has every one")
        return [*first, gap, *last]
