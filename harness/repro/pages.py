"""The reproduction matrix as pages: reports/repro.html, and a page per cell with every
sibling's launch and one plot of their threads against the budget."""

from __future__ import annotations

from html import escape
from pathlib import Path

from harness.report import plots
from harness.report.pages import (
    badge,
    launch_details,
    launch_series,
    legend,
    page,
    read_outcome,
    write,
)
from harness.repro.record import CellRecord
from harness.repro.report import floor_line, short
from harness.verdict.verdicts import Verdict


def cell_id(cell: CellRecord) -> str:
    return f"{cell.condition}-{cell.method}"


def cell_page(cell: CellRecord) -> str:
    outcomes = [read_outcome(d) for d in cell.log_dirs]
    series = [launch_series(f"sibling {i}", o) for i, o in enumerate(outcomes)]
    budget = next((o.get("budget", {}).get("limit") for o in outcomes
                   if o.get("budget", {}).get("limit")), None)
    plot = plots.threads(series, budget, f"{cell.condition} x {cell.method}: threads "
                                         "per sibling (stacked)") if series else ""
    plot += "".join(plots.calls(records, f"{cell.condition}: after each call")
                    for records in cell.calls if records)
    verdicts = ", ".join(badge(v) for v in cell.verdicts)
    body = (f"<p><a href='../repro.html'>&larr; the matrix</a></p>"
            f"<p>{escape(cell.reason)}</p>"
            f"<p>expected <b>{escape(str(cell.expected))}</b>; observed {verdicts}"
            f"{'' if cell.passed else ' <b>MISMATCH</b>'}</p>{plot}"
            + "".join(launch_details(o, f"sibling {i}") for i, o in enumerate(outcomes)))
    return page(f"{cell.condition} x {cell.method}", body)


def _matrix_cell(cell: CellRecord | None) -> str:
    if cell is None:
        return "<td>-</td>"
    verdicts = cell.verdicts
    main = max(set(verdicts), key=verdicts.count) if verdicts else Verdict.ERROR
    full = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
    css = "cell" if cell.passed else "cell mismatch"
    return (f"<td class='{css}' style='background:{plots.color(main)}' title='{escape(full)}'>"
            f"<a href='launches/{escape(cell_id(cell))}.html'>{escape(short(verdicts))}</a></td>")


def matrix_page(report: dict) -> str:
    methods = list(dict.fromkeys(c.method for c in report["cells"]))
    rows: dict[str, dict[str, CellRecord]] = {}
    for cell in report["cells"]:
        rows.setdefault(cell.condition, {})[cell.method] = cell
    head = "<tr><th>condition</th>" + "".join(f"<th>{escape(m)}</th>" for m in methods) + "</tr>"
    lines = "".join(f"<tr><th>{escape(cond)}</th>"
                    + "".join(_matrix_cell(by.get(m)) for m in methods) + "</tr>"
                    for cond, by in rows.items())
    findings = "".join(f"<li>{escape(f)}</li>" for f in report.get("findings", []))
    status = "every cell as expected" if report.get("passed") else "MISMATCHES (outlined)"
    short_names = ", ".join(f"{v.short} = {v}" for v in Verdict if v.short != v)
    return page("Reproduction matrix",
                 f"<p>{status}; each cell opens the launches behind it.</p>{legend()}"
                 f"<p>in the cells: {escape(short_names)}</p>"
                 f"<table>{head}{lines}</table><h2>Findings</h2><ul>{findings}</ul>"
                 + (f"<p>{escape(floor_line(report['floor']))}</p>" if report.get("floor")
                    else ""))


def write_repro(report: dict, out: Path) -> Path:
    """reports/repro.html and reports/launches/<condition>-<method>.html."""
    for cell in report["cells"]:
        write(out / "launches" / f"{cell_id(cell)}.html", cell_page(cell))
    return write(out / "repro.html", matrix_page(report))
