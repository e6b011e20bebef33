"""What a Phase 2 run reports: one record per finished evaluation (the ledger's lines),
and results.json = those records plus one Summary, whichever executor ran them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.phase2.grid import Evaluation
from harness.phase2.task import Task
from harness.supervise.files import LaunchFiles
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict, tally
from harness.workload import events as ev

# The keys of each evaluation in results.json (the ledger keeps the whole record).
RESULT_KEYS = ("key", "params", "verdict", "attempts", "metrics", "duration_s", "log_dir",
               "started_at", "ended_at", "peak_threads", "score", "devices", "node",
               "cpu_s", "timing")


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
        "guesses": task.guesses,  # attempts that died within a grant the runner guessed
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
        "notes": task.notes,  # the runner's word on it (why it was not retried)
        "cpu_s": outcome.cpu_s,
        "timing": timing(task, outcome),
    }


def _since(end: float | None, start: float | None) -> float | None:
    return round(end - start, 3) if end and start else None


def timing(task: Task, outcome: Outcome) -> dict[str, float | None]:
    """Where the evaluation's time went: waiting to start (over all attempts), then in its
    last attempt start -> work_started -> completion (or exit), and exit -> tree reaped."""
    events = ev.read_events(LaunchFiles(Path(outcome.log_dir)).events) if outcome.log_dir else []
    seen = {e["event"]: e.get("t") for e in events}
    line = outcome.timeline
    work = seen.get(ev.WORK_STARTED)
    return {"queued_s": round(task.queued_s, 3),
            "to_work_s": _since(work, line.get("started") or task.started_at),
            "work_s": _since(seen.get(ev.COMPLETED) or line.get("exited"), work),
            "reap_s": _since(line.get("reaped"), line.get("exited"))}


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
    started_at: float | None = None  # wall clock
    cpus: int | None = None  # what the run's children could use at once
    child_cpu_s: float | None = None  # the final attempts' CPU seconds
    floor_s: float | None = None  # child_cpu_s / cpus: no run can finish sooner
    ratio_to_floor: float | None = None

    def record(self) -> dict:
        return asdict(self)


def _floor(summary: Summary, rows: list[dict]) -> None:
    """The floor: the CPU seconds the finished evaluations needed, spread over every CPU;
    a run's wall time over it says how much the scheduling cost."""
    cpu = sum(r.get("cpu_s") or 0.0 for r in rows)
    if not (summary.cpus and cpu):
        return
    summary.child_cpu_s = round(cpu, 2)
    summary.floor_s = round(cpu / summary.cpus, 2)
    summary.ratio_to_floor = round(summary.wall_s / summary.floor_s, 3)


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
    _floor(summary, rows)
    return {"evaluations": [{k: row.get(k) for k in RESULT_KEYS} for row in rows],
            "summary": summary.record()}
