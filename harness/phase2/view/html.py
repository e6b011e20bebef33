"""OUT/report.html for a Phase 2 run: a Gantt of evaluations and their attempts, the
budget's tasks in use with the admission decisions, the best configuration and where
the time went. Past GANTT_ROWS evaluations, an occupancy view and the slowest, best and
failed ones instead, so the page stays small for any grid. Rewritten while the run goes
(snapshots.py) and at its end."""

from __future__ import annotations

import heapq
import sys
import time
from collections.abc import Iterable
from html import escape
from pathlib import Path

from harness import untrusted
from harness.phase2.layout import ATTEMPT_GLOB, Layout
from harness.phase2.view.wording import TIMING_NAMES, medians, some
from harness.report import pages, plots
from harness.supervise import samples
from harness.verdict.verdicts import Verdict


def _attempts(out: Path) -> list[tuple[str, dict]]:
    """(evaluation key, outcome) of every attempt under OUT/evals, in attempt order."""
    found = []
    paths = [p for p in Layout(out).evals.glob(f"*/{ATTEMPT_GLOB}/outcome.json")
             if p.parent.name.split("-")[-1].isdigit()]
    for path in sorted(paths, key=lambda p: (p.parent.parent.name,
                                             int(p.parent.name.split("-")[-1]))):
        if (outcome := untrusted.read_json_object(path)) is not None:
            found.append((path.parent.parent.name, outcome))
    return found


def _bars(attempts: list[tuple[str, dict]], run_start: float) -> list[plots.Bar]:
    bars: list[plots.Bar] = []
    last_end: dict[str, float] = {}
    for key, outcome in attempts:
        line = outcome.get("timeline", {})
        start = line.get("started")
        if not start:
            continue
        end = line.get("reaped") or line.get("exited") or start + outcome.get("duration_s", 0)
        queued = last_end.get(key, min(run_start, start))
        bars.append(plots.Bar(key, queued, start, end, outcome.get("verdict", Verdict.ERROR)))
        last_end[key] = end
    return bars


def _in_use(attempts: list[tuple[str, dict]]) -> list[tuple[float, int]]:
    """The budget group's tasks in use over time, from every launch's samples."""
    points: dict[float, int] = {}
    for _, outcome in attempts:
        for s in samples.read(Path(outcome.get("log_dir", "")))[0]:
            if s.get("budget_current") is not None:
                points[round(s["t"], 2)] = s["budget_current"]
    return sorted(points.items())


def _timing_table(evaluations: list[dict]) -> str:
    head = ("<tr><th>evaluation</th><th>verdict</th><th>attempts</th>"
            + "".join(f"<th>{n}</th>" for n in TIMING_NAMES.values())
            + "<th>CPU s</th><th>score</th></tr>")
    rows = []
    for e in evaluations:
        t = e.get("timing") or {}
        cells = "".join(f"<td>{t[k]:.2f}</td>" if t.get(k) is not None else "<td>-</td>"
                        for k in TIMING_NAMES)
        score = "" if e.get("score") is None else f"{e['score']:.4f}"
        rows.append(f"<tr><td>{escape(e['key'])}</td><td>{pages.badge(e['verdict'])}</td>"
                    f"<td>{e['attempts']}</td>{cells}<td>{e.get('cpu_s') or 0:.1f}</td>"
                    f"<td>{score}</td></tr>")
    spent = ", ".join(f"{name} {value:.2f} s" for name, value in medians(evaluations))
    return (f"<p>median per evaluation: {spent}</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _summary(summary: dict) -> str:
    best = summary.get("best")
    floor = (f"; floor {summary['floor_s']:.1f} s ({summary['child_cpu_s']:.1f} CPU-s over "
             f"{summary['cpus']} CPUs): {summary['ratio_to_floor']:.2f}&times; it"
             if summary.get("floor_s") else "")
    return (f"<p><b>{summary['ok']}/{summary['total']} ok</b> in {summary['wall_s']:.1f} s"
            f"{floor}; strategy {escape(summary['strategy'])}, executor "
            f"{escape(str(summary.get('executor')))}, at most {summary.get('max_running')} "
            f"at once, per-child need {summary.get('per_child_need')}</p>"
            + (f"<p>best: <code>{escape(best['key'])}</code> {escape(str(best['params']))} "
               f"{escape(summary['metric'])} = {best['score']:.4f}</p>" if best else "")
            + (f"<p><b>interrupted</b>: {escape(summary['interrupted'])}</p>"
               if summary.get("interrupted") else "")
            + (f"<p>not finished: {escape(some(summary['missing']))}</p>"
               if summary.get("missing") else ""))


GANTT_ROWS = 300  # past this many evaluations: occupancy, and the ones that matter listed
LISTED = 20  # slowest, best; failed ones up to 3x this


def _picked(evaluations: Iterable[dict], occ: plots.Occupancy
            ) -> tuple[list[dict], list[dict], list[dict], int]:
    """(slowest, best, failed, how many failed) of a large grid, in one streamed pass that
    also feeds the occupancy view."""
    slowest: list[tuple[float, int, dict]] = []
    best: list[tuple[float, int, dict]] = []
    failed: list[dict] = []
    n_failed = 0
    for i, e in enumerate(evaluations):
        if e.get("started_at") and e.get("ended_at"):
            occ.add(e["started_at"], e["ended_at"])
        heap = (e.get("duration_s") or 0.0, i, e)
        (heapq.heappush if len(slowest) < LISTED else heapq.heappushpop)(slowest, heap)
        if e["verdict"] != Verdict.OK:
            n_failed += 1
            if len(failed) < 3 * LISTED:
                failed.append(e)
        elif e.get("score") is not None:
            pick = (e["score"], i, e)
            (heapq.heappush if len(best) < LISTED else heapq.heappushpop)(best, pick)
    return ([e for *_, e in sorted(slowest, reverse=True)],
            [e for *_, e in sorted(best, reverse=True)], failed, n_failed)


def _large(results: dict, start: float) -> str:
    """A grid too large for a row per evaluation: occupancy over time, then the slowest,
    the best and the failed (every row is in results.json)."""
    occ = plots.Occupancy(start, results["summary"]["wall_s"])
    slowest, best, failed, n_failed = _picked(results["evaluations"], occ)
    more = f" (the first {len(failed)} of {n_failed})" if n_failed > len(failed) else ""
    return (plots.occupancy(occ)
            + "<p>every evaluation is in results.json and ledger.jsonl; the budget's tasks "
              "in use are in each evaluation's samples.jsonl</p>"
            + f"<h2>Failed{more}</h2>" + (_timing_table(failed) if failed else "<p>none</p>")
            + f"<h2>Slowest {len(slowest)}</h2>" + _timing_table(slowest)
            + f"<h2>Best {len(best)}</h2>" + _timing_table(best))


def write(out: Path, results: dict, decisions: list[tuple[float, str]]) -> Path:
    summary = results["summary"]
    start = summary.get("started_at") or time.time()
    listed = "".join(f"<li>{escape(d)}</li>" for _, d in decisions)
    if summary.get("finished", 0) > GANTT_ROWS:
        middle = _large(results, start)
    else:
        attempts = _attempts(out)
        budget = (summary.get("budget") or {}).get("limit")
        middle = (plots.gantt(_bars(attempts, start), start)
                  + plots.budget_use(_in_use(attempts), budget, decisions, start)
                  + "<h2>Where the time went</h2>" + _timing_table(results["evaluations"]))
    body = (_summary(summary) + pages.legend() + middle
            + f"<h2>Decisions</h2><ol>{listed}</ol>")
    return pages.write(Layout(out).report, pages.page("Phase 2 run", body))


def write_or_say(out: Path, results: dict, decisions: list[tuple[float, str]]) -> None:
    """write(), but a report that cannot be drawn is one line on stderr, not a failed run:
    results.json and the ledger are already written, and they are what counts."""
    try:
        write(out, results, decisions)
    except Exception as exc:  # a view must never turn a finished grid into an error
        print(f"phase2: {Layout(out).report} not written: {type(exc).__name__}: {exc}",
              file=sys.stderr)
