"""One finished evaluation's row, in one place: built from its task and outcome (record),
checked when the ledger is read back (problem: ledger lines are untrusted input), and
projected to what results.json shows of it (result_row)."""

from __future__ import annotations

from pathlib import Path

from harness import untrusted
from harness.phase2.schedule.task import Task
from harness.supervise.files import LaunchFiles
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import VERDICTS
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
        "verdict": task.stop_verdict if task.pruned else outcome.verdict,
        "attempts": task.attempts,
        "attempt_verdicts": task.verdicts,
        # attempts that died within a grant the runner guessed
        "guesses": [g.record() for g in task.guesses],
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
        # the runner's word on it (why it was not retried, why a search stopped it)
        "notes": [*task.notes, *([task.pruned] if task.pruned else [])],
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


def result_row(row: dict) -> dict:
    """One evaluation as results.json shows it (the ledger keeps the whole record)."""
    return {k: row.get(k) for k in RESULT_KEYS}


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "key": str, "params": dict, "verdict": str, "attempts": int, "attempt_verdicts": list,
    "duration_s": (int, float), "started_at": (int, float), "peak_threads": int,
    "cpu_s": (int, float)}


_NAMES = {"duration_s": "number", "started_at": "number", "cpu_s": "number"}


def problem(record: object) -> str | None:
    """Why a ledger line is not a finished evaluation's record, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for field, kind in _FIELDS.items():
        value = record.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            return (f"its {field!r} is {str(value)[:40]!r}, not a "
                    f"{_NAMES.get(field, getattr(kind, '__name__', kind))}")
    if record["verdict"] not in VERDICTS:
        return f"its verdict {record['verdict'][:40]!r} is not one"
    if not untrusted.count(record["attempts"], 10**6) or record["peak_threads"] < 0:
        return "its counts are out of range"
    if not all(map(untrusted.real_number, (record["duration_s"], record["cpu_s"],
                                           record["started_at"]))):
        return "its times are out of range"
    return None
