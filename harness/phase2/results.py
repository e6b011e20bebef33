"""What a Phase 2 run reports: one record per finished evaluation (the ledger's lines),
and results.json = those records plus one Summary, whichever executor ran them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.outcome import Outcome
from harness.phase2.grid import Evaluation
from harness.phase2.task import Task
from harness.verdict import Verdict, tally

# The keys of each evaluation in results.json (the ledger keeps the whole record).
RESULT_KEYS = ("key", "params", "verdict", "attempts", "metrics", "duration_s", "log_dir",
               "started_at", "ended_at", "peak_threads", "score", "devices", "node")


def score(metrics: dict | None, metric: str) -> float | None:
    value = (metrics or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def record(task: Task, outcome: Outcome, metric: str, node: str) -> dict:
    """One finished evaluation, as the ledger stores it."""
    return {
        "key": task.evaluation.key,
        "index": task.evaluation.index,
        "params": task.evaluation.params,
        "verdict": outcome.verdict,
        "attempts": task.attempts,
        "attempt_verdicts": task.verdicts,
        "metrics": outcome.metrics,
        "score": score(outcome.metrics, metric),
        "duration_s": outcome.duration_s,
        "started_at": task.started_at,
        "ended_at": task.started_at + outcome.duration_s,
        "peak_threads": outcome.peak_threads,
        "devices": outcome.devices,
        "node": node,
        "log_dir": outcome.log_dir,
        "evidence": outcome.evidence[:4],
    }


@dataclass
class Summary:
    """The run as a whole; the executor fields come from Executor.facts()."""

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

    def record(self) -> dict:
        return asdict(self)


def results(evaluations: list[Evaluation], finished: dict[str, dict], *, strategy: str,
            metric: str, wall_s: float, facts: dict) -> dict:
    """results.json: the finished evaluations in grid order, and the summary."""
    rows = [finished[e.key] for e in evaluations if e.key in finished]
    scored = [r for r in rows if r["verdict"] == Verdict.OK and r.get("score") is not None]
    best = max(scored, key=lambda r: r["score"], default=None)
    by_verdict = tally(r["verdict"] for r in rows)
    summary = Summary(
        strategy=strategy, total=len(evaluations), finished=len(rows),
        missing=[e.key for e in evaluations if e.key not in finished],
        ok=by_verdict.get(Verdict.OK, 0), by_verdict=by_verdict,
        attempts_total=sum(r["attempts"] for r in rows), metric=metric,
        best=best and {"key": best["key"], "params": best["params"], "score": best["score"]},
        wall_s=round(wall_s, 3), **facts)
    return {"evaluations": [{k: row[k] for k in RESULT_KEYS} for row in rows],
            "summary": summary.record()}
