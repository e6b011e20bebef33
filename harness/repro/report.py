"""The reproduction matrix as people read it: the report of the cells that ran, its
findings (derived from the cells, nothing assumed), the terminal table, the markdown and
the JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.table import Table

from harness import envpolicy
from harness.repro.matrix import CHILD_METHODS, FIELD_METHODS, IN_PARENT, METHODS, ROWS
from harness.repro.record import CellRecord
from harness.verdict.verdicts import VERDICTS, Verdict, tally


def _picture(verdicts: list[str]) -> str:
    """'ok' when all agree, else counts: '3 thread_exhaustion, 1 ok'."""
    if verdicts and len(set(verdicts)) == 1:
        n = len(verdicts)
        return verdicts[0] if n == 1 else f"{n}/{n} {verdicts[0]}"
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def conclusions(cells: list[CellRecord]) -> list[str]:
    """Findings derived from the cells that ran; nothing here is assumed."""
    by_row: dict[str, list[CellRecord]] = {}
    for cell in cells:
        by_row.setdefault(cell.condition, []).append(cell)
    found: list[str] = []
    for finding in (_baseline, _shared_budget, _parent_tf, _heavy_output, _cuda_hidden,
                    _address_space, _thread_caps, _in_parent):
        found += finding(by_row)
    return found


def _baseline(by_row: dict[str, list[CellRecord]]) -> list[str]:
    if "baseline" not in by_row:
        return []
    bad = [c.method for c in by_row["baseline"] if set(c.verdicts) != {Verdict.OK}]
    return ["Alone and unlimited, every method tested completed." if not bad
            else f"Even alone and unlimited, {', '.join(bad)} failed."]


def _shared_budget(by_row: dict[str, list[CellRecord]]) -> list[str]:
    found = []
    for row in ("shared-budget", "shared-budget-8"):
        field = [c for c in by_row.get(row, [])
                 if c.method in FIELD_METHODS and c.method in CHILD_METHODS]
        if field:
            lost = [c for c in field if c.verdicts.count(Verdict.THREAD_EXHAUSTION) >= 2]
            n = len(field[0].verdicts)
            if len(lost) == len(field):
                found.append(f"Under one task budget shared by {n} siblings, all {len(field)} "
                             "invocation methods tested lost at least 2 siblings to "
                             "thread_exhaustion: the verdict does not depend on the method, "
                             "the shared limit is the cause.")
            else:
                spared = [c.method for c in field if c not in lost]
                found.append(f"Under a shared budget ({row}) the verdict depends on the "
                             f"method: {', '.join(spared)} kept more than "
                             f"{n - 2} of {n} siblings.")
        for c in by_row.get(row, []):
            if c.method == "phase2":
                ok = c.verdicts.count(Verdict.OK)
                found.append(f"The Phase 2 runner completed {ok}/{len(c.verdicts)} under "
                             f"the same budget ({row}).")
    return found


def _parent_tf(by_row: dict[str, list[CellRecord]]) -> list[str]:
    cells = by_row.get("parent-tf-initialized")
    if not cells:
        return []
    hangs = [c.method for c in cells if Verdict.HANG in c.verdicts]
    fine = [c.method for c in cells if set(c.verdicts) == {Verdict.OK}]
    return [f"TF initialised in the parent: {', '.join(hangs) or 'no method'} hung; "
            f"{', '.join(fine) or 'none'} completed."]


def _heavy_output(by_row: dict[str, list[CellRecord]]) -> list[str]:
    cells = by_row.get("heavy-output")
    if not cells:
        return []
    dead = [c.method for c in cells if Verdict.PIPE_DEADLOCK in c.verdicts]
    return [f"Heavy output deadlocked {', '.join(dead) or 'no method'} on a full pipe."]


def _cuda_hidden(by_row: dict[str, list[CellRecord]]) -> list[str]:
    cells = by_row.get("cuda-hidden")
    if not cells:
        return []
    gpus = {g for c in cells for g in c.gpus_seen}
    verdicts = sorted({v for c in cells for v in c.verdicts})
    return [f"CUDA_VISIBLE_DEVICES='' left the child {sorted(gpus) or '?'} GPUs; "
            f"verdicts: {', '.join(verdicts)}."]


def _address_space(by_row: dict[str, list[CellRecord]]) -> list[str]:
    """What the address-space rows showed, cause by cause, as the launches measured it."""
    found = []
    for row in ("address-space", "stack-limit"):
        cells = by_row.get(row)
        if not cells:
            continue
        lost = [c for c in cells if Verdict.THREAD_EXHAUSTION in c.verdicts]
        fine = [c.method for c in cells if set(c.verdicts) == {Verdict.OK}]
        if not lost:
            found.append(f"{row}: no method ran out of threads "
                         f"({', '.join(sorted({v for c in cells for v in c.verdicts}))}).")
            continue
        causes = tally(c.exhausted or "not determined" for c in lost)
        found.append(f"{row}: {len(lost)} of {len(cells)} methods ended in thread_exhaustion "
                     "(pthread_create's EAGAIN, as under a task limit); cause by the launches' "
                     "own numbers: " + "; ".join(f"{k} ({n})" for k, n in causes.items())
                     + f"; completed: {', '.join(fine) or 'none'}.")
    return found


def _thread_caps(by_row: dict[str, list[CellRecord]]) -> list[str]:
    found = []
    many = {c.method: c for c in by_row.get("many-core-host", [])}
    for cap in by_row.get("thread-caps", []):
        base = many.get(cap.method)
        if not base:
            continue
        capped = (f"{max(cap.peak_threads)} threads with the parent's caps "
                  f"({cap.verdicts.count(Verdict.OK)}/{len(cap.verdicts)} ok)")
        if cap.method not in FIELD_METHODS:
            found.append(f"{cap.method} caps threads itself: {max(base.peak_threads)} threads "
                         f"under many-core-host ({base.verdicts.count(Verdict.OK)}/"
                         f"{len(base.verdicts)} ok), {capped}.")
            continue
        done = [p for p, v in zip(base.peak_threads, base.verdicts, strict=True)
                if v == Verdict.OK]
        many_text = (f"a completed child peaked at {max(done)} threads" if done else
                     "no child completed (each died creating its pools)")
        found.append(f"{cap.method}: with pools for 32 cores {many_text} "
                     f"({len(done)}/{len(base.verdicts)} ok); {capped}.")
    return found


def _in_parent(by_row: dict[str, list[CellRecord]]) -> list[str]:
    """What the in-parent launches (Solution B) measured, row by row: the verdict, and what
    one process carried from call to call."""
    found = []
    for row, cells in by_row.items():
        cell = next((c for c in cells if c.method == IN_PARENT), None)
        if cell is None:
            continue
        calls = cell.calls[0] if cell.calls else []
        text = f"in-parent under {row}: {_picture(cell.verdicts)}, {len(calls)} calls"
        if len(calls) >= 2:
            steps = len(calls) - 1
            rss = (calls[-1]["rss_mb"] - calls[0]["rss_mb"]) / steps
            threads = (calls[-1]["threads"] - calls[0]["threads"]) / steps
            text += (f" in one process peaking at {max(cell.peak_threads)} threads; RSS "
                     f"{calls[0]['rss_mb']:.0f} MB after call 1, {rss:+.0f} MB and "
                     f"{threads:+.1f} threads per call; call 1 took "
                     f"{calls[0]['duration_s']:.1f} s, the last {calls[-1]['duration_s']:.1f} s")
        others = [c for c in cells if c.method in CHILD_METHODS and c.method != "phase2"]
        if others and row.startswith("shared-budget"):
            lost = sum(c.verdicts.count(Verdict.THREAD_EXHAUSTION) for c in others)
            text += (f" (the child methods' siblings under the same budget lost {lost}: one "
                     "process is never its own sibling)")
        found.append(text + ".")
    return found


def floor(cells: list[CellRecord], wall_s: float | None, cores: int) -> dict:
    """The matrix's floor: its children's CPU seconds spread over every core, plus the
    stall and timeout waits its verdicts demanded (a hang is only a hang once watched for
    the stall timeout); the wall over it says what running the matrix cost on top."""
    cpu = sum(sum(c.cpu_s) for c in cells)
    waits = sum(c.waited_s for c in cells)
    floor_s = cpu / cores + waits
    return {"child_cpu_s": round(cpu, 1), "waits_s": round(waits, 1), "cores": cores,
            "floor_s": round(floor_s, 1), "wall_s": None if wall_s is None else round(wall_s, 1),
            "ratio": round(wall_s / floor_s, 3) if wall_s and floor_s else None}


def floor_line(found: dict) -> str:
    """The floor for people: one sentence."""
    text = (f"floor {found['floor_s']:.0f} s ({found['child_cpu_s']:.0f} CPU-s of children "
            f"over {found['cores']} cores + {found['waits_s']:.0f} s of stall waits)")
    if found["ratio"] is None:
        return text
    return f"{text}: the matrix took {found['wall_s']:.0f} s, {found['ratio']:.2f}x it"


def matrix_report(cells: list[CellRecord], wall_s: float | None = None,
                  cores: int | None = None) -> dict:
    order = {m: i for i, m in enumerate(METHODS)}
    cells = sorted(cells, key=lambda c: (_row_index(c.condition), order.get(c.method, 99)))
    findings = conclusions(cells)
    return {"cells": cells, "passed": all(c.passed for c in cells),
            "findings": findings, "conclusion": " ".join(findings),
            "floor": floor(cells, wall_s, cores or len(os.sched_getaffinity(0)))}


def _row_index(name: str) -> int:
    names = [r.name for r in ROWS]
    return names.index(name) if name in names else len(names)


def _grid(report: dict) -> tuple[list[str], dict[str, dict[str, CellRecord]]]:
    """(methods that ran, condition -> method -> cell), in matrix order."""
    methods = [m for m in METHODS if any(c.method == m for c in report["cells"])]
    rows: dict[str, dict[str, CellRecord]] = {}
    for cell in report["cells"]:
        rows.setdefault(cell.condition, {})[cell.method] = cell
    return methods, rows


# Short names so the terminal matrix fits 100 columns; matrix_legend() spells them out.
SHORT_METHODS = {"subprocess-pipes": "pipes", "popen-wait": "popen", "os-system": "os",
                 "shell": "shell", "mp-spawn": "spawn", "mp-fork": "fork",
                 "env-isolated": "isol", "in-parent": "inpar", "phase2": "P2"}


def _short(verdict: str) -> str:
    return Verdict(verdict).short if verdict in VERDICTS else verdict


def short(verdicts: list[str]) -> str:
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    if len(counts) == 1:
        v, n = next(iter(counts.items()))
        return _short(v) if n == 1 else f"{n}/{n} {_short(v)}"
    return " ".join(f"{n}{_short(v)}" for v, n in counts.items())


def _rich_cell(cell: CellRecord) -> str:
    if cell.passed:
        return f"[green]{short(cell.verdicts)}[/]"
    return f"[bold white on red]{short(cell.verdicts)}[/] [red]≠{cell.expected}[/]"


def matrix_table(report: dict) -> Table:
    methods, rows = _grid(report)
    table = Table(title="Reproduction matrix (observed verdicts; mismatches in red)",
                  show_lines=True, padding=(0, 1))
    table.add_column("condition", overflow="fold")
    for method in methods:
        table.add_column(SHORT_METHODS.get(method, method))
    for condition, by_method in rows.items():
        table.add_row(condition, *(_rich_cell(by_method[m]) if m in by_method else "[dim]-[/]"
                                   for m in methods))
    return table


def _markdown_cell(cell: CellRecord) -> str:
    mark = "" if cell.passed else f" **MISMATCH (expected {cell.expected})**"
    return _picture(cell.verdicts) + mark


def matrix_legend(report: dict) -> str:
    """The full names behind the terminal matrix's short ones (those it used)."""
    methods, _ = _grid(report)
    used = {v for c in report["cells"] for v in c.verdicts}
    names = [f"{SHORT_METHODS.get(m, m)} = {m}" for m in methods]
    names += [f"{v.short} = {v}" for v in Verdict if v in used and v.short != v]
    return "legend: " + ", ".join(names)


def matrix_markdown(report: dict) -> str:
    methods, rows = _grid(report)
    lines = ["# Reproduction matrix", "",
             "| condition | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for condition, by_method in rows.items():
        texts = [_markdown_cell(by_method[m]) if m in by_method else "-" for m in methods]
        lines.append(f"| {condition} | " + " | ".join(texts) + " |")
    reasons = {c.condition: c.reason for c in report["cells"]}
    lines += ["", "## Conditions", ""]
    lines += [f"- **{name}**: {reason}" for name, reason in reasons.items()]
    lines += ["", "## Findings", ""] + [f"- {f}" for f in report["findings"]]
    if report.get("floor"):
        lines += ["", "## Cost", "", floor_line(report["floor"]) + "."]
    return "\n".join(lines) + "\n"


def write_matrix(report: dict, out: Path) -> tuple[Path, Path]:
    """reports/repro.json and repro.md, with secret values redacted."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "repro.json", out / "repro.md"
    record = {**report, "cells": [c.record() for c in report["cells"]]}
    paths[0].write_text(envpolicy.redact(json.dumps(record, indent=2, default=str)))
    paths[1].write_text(envpolicy.redact(matrix_markdown(report)))
    return paths
