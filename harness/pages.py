"""Self-contained HTML pages (no network at view time): the reproduction matrix with a
page per cell, and a Phase 2 run's report. Plots come from plots.py as inline SVG."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from harness import envpolicy, jsonio, plots, samples
from harness.report import SHORT_VERDICTS, short

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #212121; max-width: 1100px }
table { border-collapse: collapse; margin: 12px 0 }
th, td { border: 1px solid #cfd8dc; padding: 6px 8px; text-align: left; vertical-align: top }
td.cell { color: white; font-weight: 600 }
td.cell a { color: white; text-decoration: none; display: block }
td.mismatch { outline: 4px solid #000; outline-offset: -4px }
pre { background: #f5f5f5; padding: 8px; overflow-x: auto; font-size: 12px }
.badge { color: white; padding: 1px 6px; border-radius: 3px; font-weight: 600 }
.legend span { margin-right: 10px }
"""


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>\n")


def write(path: Path, html: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonio.write_atomic(path, envpolicy.redact(html))
    return path


def badge(verdict: str) -> str:
    return f"<span class='badge' style='background:{plots.color(verdict)}'>{escape(verdict)}</span>"


def legend() -> str:
    return "<p class='legend'>" + "".join(
        f"<span>{badge(v)}</span>" for v in plots.VERDICT_COLORS) + "</p>"


def _outcome(log_dir: str) -> dict:
    try:
        return json.loads(Path(log_dir, "outcome.json").read_text())
    except (OSError, ValueError):
        return {"verdict": "error", "evidence": [f"no outcome.json in {log_dir}"],
                "log_dir": log_dir}


def _series(label: str, outcome: dict) -> plots.Series:
    points, marks = samples.read(Path(outcome.get("log_dir", "")))
    return plots.Series(label, points, marks, outcome.get("verdict", "error"))


def launch_details(outcome: dict, label: str) -> str:
    """One launch: verdict, evidence, the command, stderr's tail and where its files are."""
    evidence = "".join(f"<li>{escape(str(e))}</li>" for e in outcome.get("evidence", []))
    exhausted = outcome.get("exhausted")
    return (f"<h3>{escape(label)} {badge(outcome.get('verdict', 'error'))}</h3>"
            + (f"<p>exhausted: {escape(exhausted)}</p>" if exhausted else "")
            + f"<p>peak {outcome.get('peak_threads', 0)} threads, "
              f"{outcome.get('duration_s', 0)} s; logs: "
              f"<code>{escape(str(outcome.get('log_dir', '')))}</code></p>"
            + f"<ul>{evidence}</ul><p>command:</p><pre>{escape(outcome.get('command', ''))}</pre>"
            + f"<p>stderr (tail):</p><pre>{escape(outcome.get('stderr_tail', '') or '')}</pre>")


# -- the reproduction matrix ------------------------------------------------------------


def cell_id(cell: dict) -> str:
    return f"{cell['condition']}-{cell['method']}"


def cell_page(cell: dict) -> str:
    dirs = cell.get("log_dirs") or ([cell["log_dir"]] if cell.get("log_dir") else [])
    outcomes = [_outcome(d) for d in dirs]
    series = [_series(f"sibling {i}", o) for i, o in enumerate(outcomes)]
    budget = next((o.get("budget", {}).get("limit") for o in outcomes
                   if o.get("budget", {}).get("limit")), None)
    plot = plots.threads(series, budget, f"{cell['condition']} x {cell['method']}: threads "
                                         "per sibling (stacked)") if series else ""
    verdicts = ", ".join(badge(v) for v in cell["verdicts"])
    body = (f"<p><a href='../repro.html'>&larr; the matrix</a></p>"
            f"<p>{escape(cell.get('reason', ''))}</p>"
            f"<p>expected <b>{escape(str(cell['expected']))}</b>; observed {verdicts}"
            f"{'' if cell['passed'] else ' <b>MISMATCH</b>'}</p>{plot}"
            + "".join(launch_details(o, f"sibling {i}") for i, o in enumerate(outcomes)))
    return page(f"{cell['condition']} x {cell['method']}", body)


def _matrix_cell(cell: dict | None) -> str:
    if cell is None:
        return "<td>-</td>"
    verdicts = cell["verdicts"]
    main = max(set(verdicts), key=verdicts.count) if verdicts else "error"
    full = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
    css = "cell" if cell["passed"] else "cell mismatch"
    return (f"<td class='{css}' style='background:{plots.color(main)}' title='{escape(full)}'>"
            f"<a href='launches/{escape(cell_id(cell))}.html'>{escape(short(verdicts))}</a></td>")


def matrix_page(report: dict) -> str:
    methods = list(dict.fromkeys(c["method"] for c in report["cells"]))
    rows: dict[str, dict[str, dict]] = {}
    for cell in report["cells"]:
        rows.setdefault(cell["condition"], {})[cell["method"]] = cell
    head = "<tr><th>condition</th>" + "".join(f"<th>{escape(m)}</th>" for m in methods) + "</tr>"
    lines = "".join(f"<tr><th>{escape(cond)}</th>"
                    + "".join(_matrix_cell(by.get(m)) for m in methods) + "</tr>"
                    for cond, by in rows.items())
    findings = "".join(f"<li>{escape(f)}</li>" for f in report.get("findings", []))
    status = "every cell as expected" if report.get("passed") else "MISMATCHES (outlined)"
    short_names = ", ".join(f"{s} = {v}" for v, s in SHORT_VERDICTS.items() if s != v)
    return page("Reproduction matrix",
                 f"<p>{status}; each cell opens the launches behind it.</p>{legend()}"
                 f"<p>in the cells: {escape(short_names)}</p>"
                 f"<table>{head}{lines}</table><h2>Findings</h2><ul>{findings}</ul>")


def write_repro(report: dict, out: Path) -> Path:
    """reports/repro.html and reports/launches/<condition>-<method>.html."""
    for cell in report["cells"]:
        write(out / "launches" / f"{cell_id(cell)}.html", cell_page(cell))
    return write(out / "repro.html", matrix_page(report))
