"""What a Phase 2 run reports: one record per finished evaluation (the ledger's lines),
and results.json = those records plus one Summary, whichever executor ran them.

The summary is kept as running aggregates (Tally), not recomputed from every row; the
rows of results.json are streamed from the ledger in grid order when it is written (at
the end, and at a bounded rate while the run goes), so the runner holds no finished
record in memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from harness.phase2.executors.base import ExecutorFacts
from harness.phase2.grid import Evaluation
from harness.phase2.need.cache import KEPT_DURATIONS
from harness.verdict.verdicts import Verdict


@dataclass
class Summary:
    """The run as a whole; the executor fields come from Executor.facts() (ExecutorFacts)."""

    strategy: str
    total: int
    finished: int
    missing: list[str]
    ok: int
    by_verdict: dict[str, int]
    attempts_total: int
    metric: str
    best: dict | None
    wall_s: float
    executor: str | None = None
    cluster: dict | None = None
    jobs: int | None = None
    max_running: int | None = None
    per_child_need: int | None = None
    thread_caps: dict[str, str] = field(default_factory=dict)
    budget: dict | None = None
    decisions: list[str] = field(default_factory=list)
    interrupted: str | None = None
    started_at: float | None = None  # wall clock
    cpus: int | None = None  # what the run's children could use at once
    child_cpu_s: float | None = None  # the final attempts' CPU seconds
    floor_s: float | None = None  # child_cpu_s / cpus: no run can finish sooner
    ratio_to_floor: float | None = None

    def record(self) -> dict:
        return asdict(self)


@dataclass
class Tally:
    """What the summary needs of the finished evaluations, as running aggregates: one
    add() per finished evaluation, whatever the grid's size."""

    metric: str
    by_verdict: dict[str, int] = field(default_factory=dict)  # in the order first seen
    attempts_total: int = 0
    cpu_s: float = 0.0
    best: dict | None = None  # key, params, score of the best-scoring ok evaluation
    best_index: int = -1  # a tie goes to the one first in the grid
    ok_peak: int = 0  # the largest peak of an ok evaluation
    ok_wall_s: float = 0.0  # the sum of ok evaluations' durations (the mean for ordering)
    finished: int = 0
    _slowest: list[tuple[float, str]] = field(default_factory=list)  # a min-heap, bounded

    def add(self, row: dict) -> None:
        verdict = str(row["verdict"])
        self.finished += 1
        self.by_verdict[verdict] = self.by_verdict.get(verdict, 0) + 1
        self.attempts_total += row["attempts"]
        self.cpu_s += row.get("cpu_s") or 0.0
        if verdict != Verdict.OK:
            return
        self.ok_peak = max(self.ok_peak, row.get("peak_threads") or 0)
        took = row.get("duration_s") or 0.0
        self.ok_wall_s += took
        if len(self._slowest) < KEPT_DURATIONS:
            heapq.heappush(self._slowest, (took, row["key"]))
        elif took > self._slowest[0][0]:
            heapq.heapreplace(self._slowest, (took, row["key"]))
        score_, index = row.get("score"), row.get("index", 0)
        if score_ is not None and (self.best is None or (score_, -index) >
                                   (self.best["score"], -self.best_index)):
            self.best = {"key": row["key"], "params": row["params"], "score": score_}
            self.best_index = index

    @property
    def ok(self) -> int:
        return self.by_verdict.get(Verdict.OK, 0)

    @property
    def ok_mean_s(self) -> float | None:
        return self.ok_wall_s / self.ok if self.ok else None

    def slowest(self) -> list[tuple[str, float]]:
        """(key, seconds) of the longest ok evaluations (at most KEPT_DURATIONS): what the
        plan cache keeps so that the next run starts them first."""
        return [(key, took) for took, key in sorted(self._slowest, reverse=True)]


def summary(tally: Tally, evaluations: Sequence[Evaluation], finished: Callable[[int], bool], *,
            strategy: str, wall_s: float, facts: ExecutorFacts, per_child_need: int | None,
            decisions: list[str], interrupted: str | None, started_at: float) -> Summary:
    """The summary from the running aggregates; the missing keys are the one pass over
    the grid it costs."""
    made = Summary(
        strategy=strategy, total=len(evaluations), finished=tally.finished,
        missing=[e.key for e in evaluations if not finished(e.index)], ok=tally.ok,
        by_verdict=dict(tally.by_verdict), attempts_total=tally.attempts_total,
        metric=tally.metric, best=tally.best, wall_s=round(wall_s, 3),
        executor=facts.executor, cluster=facts.cluster, jobs=facts.jobs,
        max_running=facts.max_running, per_child_need=per_child_need,
        thread_caps=facts.thread_caps, budget=facts.budget, decisions=decisions,
        interrupted=interrupted, started_at=started_at, cpus=facts.cpus)
    if made.cpus and tally.cpu_s:
        # The floor: the CPU seconds the finished evaluations needed, spread over every
        # CPU; a run's wall time over it says how much the scheduling cost.
        made.child_cpu_s = round(tally.cpu_s, 2)
        made.floor_s = round(tally.cpu_s / made.cpus, 2)
        made.ratio_to_floor = round(made.wall_s * made.cpus / tally.cpu_s, 3)
    return made
