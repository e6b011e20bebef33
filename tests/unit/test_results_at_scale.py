"""results.json from running aggregates and a streamed ledger is the same as the whole-grid
computation the runner did before (kept here as the oracle), and --resume still takes the
ledger as the truth. The executor finishes attempts at once (tests/fakes/instant.py): what
is under test is what the runner computes, not the children."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from harness.phase2 import runner
from harness.phase2.grid import Evaluation
from harness.phase2.options import RunOptions
from harness.phase2.record.row import RESULT_KEYS
from harness.phase2.view.html import GANTT_ROWS
from harness.phase2.view.wording import SHOWN_MISSING
from tests.fakes.instant import instant

SIZE = GANTT_ROWS + 40  # past the Gantt: the report's large view is drawn too
TEMPLATE = ["true", "{x}"]
GRID = [{"x": i} for i in range(SIZE)]
# What the oracle is handed rather than computes: the run's facts and its clock.
GIVEN = ("wall_s", "executor", "cluster", "jobs", "max_running", "per_child_need",
         "thread_caps", "budget", "decisions", "interrupted", "started_at", "cpus")


def mixed(task) -> dict:
    """Ok with tied, missing and varied scores; crashes; exhaustion that a retry fixes."""
    i = task.evaluation.index
    if i % 13 == 0:
        return {"verdict": "crash", "exit_code": 1}
    if i % 17 == 0 and task.attempts == 1:
        return {"verdict": "thread_exhaustion", "exit_code": -6}
    metrics = {} if i % 5 == 0 else {"cv_score_mean": (i % 23) / 23}
    return {"verdict": "ok", "metrics": metrics, "duration_s": 0.5 + (i % 7) / 10,
            "cpu_s": 0.25 + (i % 3) / 10}


def _opts(out: Path, **kw) -> RunOptions:
    return RunOptions(out=out, live=False, plan_cache=False, **kw)


def _ledger_rows(out: Path) -> dict[str, dict]:
    """Every line of the ledger, the later line of an evaluation winning."""
    lines = (out / "ledger.jsonl").read_text().splitlines()
    return {row["key"]: row for row in map(json.loads, lines)}


def oracle(evaluations: list[Evaluation], finished: dict[str, dict], given: dict) -> dict:
    """results.json as the runner computed it before it ran at scale: every row in memory,
    every aggregate recomputed from all of them."""
    rows = [finished[e.key] for e in evaluations if e.key in finished]
    scored = [r for r in rows if r["verdict"] == "ok" and r.get("score") is not None]
    best = max(scored, key=lambda r: r["score"], default=None)
    by_verdict = dict(Counter(r["verdict"] for r in rows))
    summary = {**given, "strategy": "runner", "total": len(evaluations),
               "finished": len(rows),
               "missing": [e.key for e in evaluations if e.key not in finished],
               "ok": by_verdict.get("ok", 0), "by_verdict": by_verdict,
               "attempts_total": sum(r["attempts"] for r in rows),
               "metric": "cv_score_mean", "child_cpu_s": None, "floor_s": None,
               "ratio_to_floor": None,
               "best": best and {"key": best["key"], "params": best["params"],
                                 "score": best["score"]}}
    cpu = sum(r.get("cpu_s") or 0.0 for r in rows)
    if given["cpus"] and cpu:
        summary["child_cpu_s"] = round(cpu, 2)
        summary["floor_s"] = round(cpu / given["cpus"], 2)
        summary["ratio_to_floor"] = round(given["wall_s"] / summary["floor_s"], 3)
    return {"evaluations": [{k: row.get(k) for k in RESULT_KEYS} for row in rows],
            "summary": summary}


def _check_against_oracle(out: Path) -> dict:
    written = json.loads((out / "results.json").read_text())
    given = {k: written["summary"][k] for k in GIVEN}
    evaluations = [Evaluation(i, p) for i, p in enumerate(GRID)]
    expected = oracle(evaluations, _ledger_rows(out), given)
    assert written["evaluations"] == expected["evaluations"]
    assert written["summary"] == expected["summary"]
    return written


def test_results_json_is_the_whole_grid_computation(tmp_path):
    results = runner.run(TEMPLATE, GRID, _opts(tmp_path / "out"), kind=instant(mixed))
    written = _check_against_oracle(tmp_path / "out")
    summary = written["summary"]
    assert summary["by_verdict"] == {"ok": SIZE - len(range(0, SIZE, 13)),
                                     "crash": len(range(0, SIZE, 13))}
    assert summary["attempts_total"] > SIZE  # the exhausted ones were run again
    assert results["summary"] == summary and list(results["evaluations"]) == \
        written["evaluations"]
    report = (tmp_path / "out" / "report.html").read_text()
    assert 'id="occupancy' in report and "Slowest" in report and "Failed" in report


def test_resume_skips_what_the_ledger_holds(tmp_path):
    """A runner killed after 100 evaluations (its ledger cut there, the last line torn):
    --resume runs exactly the others, and results.json is the whole grid's."""
    out = tmp_path / "out"
    runner.run(TEMPLATE, GRID, _opts(out), kind=instant(mixed))
    lines = (out / "ledger.jsonl").read_text().splitlines(keepends=True)
    kept = lines[:100]
    (out / "ledger.jsonl").write_text("".join(kept) + lines[100][:20])
    (out / "results.json").unlink()
    started: list[int] = []

    def counted(task) -> dict:
        started.append(task.evaluation.index)
        return mixed(task)

    runner.run(TEMPLATE, GRID, _opts(out, resume=True), kind=instant(counted))
    done_before = {json.loads(line)["index"] for line in kept}
    assert set(started) == set(range(SIZE)) - done_before
    written = _check_against_oracle(out)
    assert written["summary"]["finished"] == SIZE and not written["summary"]["missing"]


def test_decisions_stream_to_a_file_and_the_summary_keeps_a_bounded_view(tmp_path):
    out = tmp_path / "out"
    runner.run(TEMPLATE, GRID, _opts(out), kind=instant(mixed))
    streamed = [json.loads(line)["decision"]
                for line in (out / "decisions.jsonl").read_text().splitlines()]
    shown = json.loads((out / "results.json").read_text())["summary"]["decisions"]
    assert streamed and set(shown) <= set(streamed)


def test_json_on_stdout_is_results_json_and_people_see_a_few_missing_keys(tmp_path):
    """`phase2 run --json` prints results.json as written; an interrupted large grid's
    missing keys are all in it, and people are shown the first few and a count."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"x": i} for i in range(60)]))
    cmd = [sys.executable, "-m", "harness", "phase2", "run", "--grid", str(grid),
           "--no-plan-cache", "--progress", "lines", "--deadline", "0.01"]
    as_json = subprocess.run([*cmd, "--out", str(tmp_path / "a"), "--json", "--",
                              sys.executable, "-c", "print({x})"], capture_output=True,
                             text=True, timeout=120)
    assert as_json.returncode == 1, as_json.stderr[-2000:]
    results = json.loads(as_json.stdout)
    assert results == json.loads((tmp_path / "a" / "results.json").read_text())
    missing = results["summary"]["missing"]
    assert len(missing) > SHOWN_MISSING and results["summary"]["interrupted"]
    for_people = subprocess.run([*cmd, "--out", str(tmp_path / "b"), "--",
                                 sys.executable, "-c", "print({x})"], capture_output=True,
                                text=True, timeout=120)
    assert "more (results.json lists them)" in " ".join(for_people.stdout.split())
    report = (tmp_path / "b" / "report.html").read_text()
    assert "more (results.json lists them)" in report
