"""Self-contained HTML pages (no network at view time): the page frame, verdict badges and
one launch's details, for the matrix's pages and a Phase 2 run's report. Plots come from
plots.py as inline SVG."""

from __future__ import annotations

from html import escape
from pathlib import Path

from harness import envpolicy, jsonio, untrusted
from harness.report import plots
from harness.supervise import samples
from harness.verdict.verdicts import VERDICTS, Verdict

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
        f"<span>{badge(v)}</span>" for v in VERDICTS) + "</p>"


def read_outcome(log_dir: str) -> dict:
    """One launch's outcome.json, or a stand-in that says there is none."""
    found = untrusted.read_json_object(Path(log_dir, "outcome.json"))
    if found is None:
        return {"verdict": Verdict.ERROR, "evidence": [f"no outcome.json in {log_dir}"],
                "log_dir": log_dir}
    return found


def launch_series(label: str, outcome: dict) -> plots.Series:
    points, marks = samples.read(Path(outcome.get("log_dir", "")))
    return plots.Series(label, points, marks, outcome.get("verdict", Verdict.ERROR))


def launch_details(outcome: dict, label: str) -> str:
    """One launch: verdict, evidence, the command, stderr's tail and where its files are."""
    evidence = "".join(f"<li>{escape(str(e))}</li>" for e in outcome.get("evidence", []))
    exhausted = outcome.get("exhausted")
    return (f"<h3>{escape(label)} {badge(outcome.get('verdict', Verdict.ERROR))}</h3>"
            + (f"<p>exhausted: {escape(exhausted)}</p>" if exhausted else "")
            + f"<p>peak {outcome.get('peak_threads', 0)} threads, "
              f"{outcome.get('duration_s', 0)} s; logs: "
              f"<code>{escape(str(outcome.get('log_dir', '')))}</code></p>"
            + f"<ul>{evidence}</ul><p>command:</p><pre>{escape(outcome.get('command', ''))}</pre>"
            + f"<p>stderr (tail):</p><pre>{escape(outcome.get('stderr_tail', '') or '')}</pre>")
