"""Snapshots of a Phase 2 run for people and machines: results.json and report.html,
written at a bounded rate while the run goes (at most every REFRESH_S) and once at its
end, never once per evaluation. The ledger is the record in between."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.phase2.executors.base import Executor
from harness.phase2.grid import Evaluation
from harness.phase2.need.estimate import Need
from harness.phase2.record import summary as made
from harness.phase2.record.ledger import Ledger
from harness.phase2.record.row import result_row
from harness.phase2.schedule.decisions import DecisionLog

REFRESH_S = 30.0  # a results.json and a report are O(grid); the children need the CPUs


class LedgerEvaluations(Sequence):
    """results.json's evaluations, in grid order, read from the ledger when iterated:
    a run's results hold no finished record in memory however large its grid."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._indices: list[int] | None = None

    def __iter__(self) -> Iterator[dict]:
        return (result_row(row) for row in self._ledger.rows())

    def __len__(self) -> int:
        if self._indices is None:
            self._indices = self._ledger.indices()
        return len(self._indices)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return list(itertools.islice(self, *item.indices(len(self))))
        if item < 0:
            item += len(self)
        row = next(itertools.islice(self, item, None), None)
        if row is None:
            raise IndexError(item)
        return row

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented


@dataclass(frozen=True)
class Sources:
    """What a snapshot's summary reads at the moment it is taken, besides the ledger."""

    executor: Executor
    need: Need
    log: DecisionLog


# Draws OUT/report.html from the results and the decisions shown (view/html.py's
# write_or_say, handed in by the runner: a record does not know its views).
Render = Callable[[Path, dict, list[tuple[float, str]]], None]


class Snapshots:
    """What a run shows of itself, from its running aggregates and its ledger."""

    def __init__(self, ledger: Ledger, tally: made.Tally, evaluations: Sequence[Evaluation], *,
                 strategy: str, sources: Sources, render: Render) -> None:
        self.ledger, self.tally, self.evaluations = ledger, tally, evaluations
        self.strategy, self.sources, self.render = strategy, sources, render
        self.t0, self.started_at = time.monotonic(), time.time()
        self._next = self.t0 + REFRESH_S

    def summary(self, interrupted: str | None = None) -> dict:
        src = self.sources
        return made.summary(
            self.tally, self.evaluations, self.ledger.has, strategy=self.strategy,
            wall_s=time.monotonic() - self.t0, facts=src.executor.facts(),
            per_child_need=src.need.value, decisions=[text for _, text in src.log.shown()],
            interrupted=interrupted, started_at=self.started_at).record()

    def maybe(self) -> None:
        """A snapshot, where the last is older than REFRESH_S."""
        if time.monotonic() >= self._next:
            self.write(self.summary())
            self._next = time.monotonic() + REFRESH_S

    def write(self, summary: dict) -> dict:
        """results.json, then the report (a view: one that cannot be drawn is a line on
        stderr); the results, whose evaluations stream from the ledger."""
        self.ledger.write_results(summary)
        results = {"evaluations": LedgerEvaluations(self.ledger), "summary": summary}
        self.render(self.ledger.out, results, self.sources.log.shown())
        return results
