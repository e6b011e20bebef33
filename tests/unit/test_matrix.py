"""The expectations table and the report derived from cells (no launches)."""

from __future__ import annotations

import pytest

from harness.repro import matrix
from harness.repro.record import CellRecord
from harness.repro.report import conclusions, floor_line, matrix_markdown, matrix_report


@pytest.mark.parametrize(("spec", "verdicts", "holds"), [
    ("ok", ["ok"], True), ("ok", ["ok", "hang"], False), ("ok", [], False),
    ("thread_exhaustion>=2", ["thread_exhaustion"] * 2 + ["ok"] * 2, True),
    ("thread_exhaustion>=2", ["thread_exhaustion", "ok"], False),
    ("ok<=1", ["ok", "thread_exhaustion"], True), ("ok<=1", ["ok", "ok"], False),
    ("ok=2", ["ok", "ok"], True),
])
def test_expectations(spec, verdicts, holds):
    assert matrix.Expectation.parse(spec).holds(verdicts) is holds


@pytest.mark.parametrize("bad", ["", "OK", "ok>2", "ok>=x", "ok>=2 "])
def test_bad_expectation(bad):
    with pytest.raises(ValueError, match="bad expectation"):
        matrix.Expectation.parse(bad)


def test_every_row_parses_for_every_method():
    for row in matrix.ROWS:
        for method in matrix.METHODS:
            row.expectation(method)
            row.expectation(method, gpu_host=True)
        assert set(row.default) <= set(matrix.METHODS)


def test_default_matrix_is_smaller_than_full_and_covers_the_must_haves():
    default, full = matrix.cells(full=False), matrix.cells(full=True)
    names = {(r.name, m) for r, m in default}
    assert len(default) < len(full)
    assert {("baseline", m) for m in matrix.METHODS} <= names
    assert {("shared-budget", m) for m in matrix.METHODS} <= names
    assert ("parent-tf-initialized", "mp-fork") in names
    assert ("heavy-output", "popen-wait") in names
    assert not any(r.full_only for r, _ in default)


def test_foreign_commands_skip_rows_that_change_workload_flags():
    rows = {r.name for r, _ in matrix.cells(full=True, reference=False)}
    assert "heavy-output" not in rows and "many-core-host" not in rows
    assert "shared-budget" in rows


def _cell(condition, method, verdicts, passed=True, **extra):
    return CellRecord(condition, method, verdicts, passed, "ok",
                      peak_threads=[40] * len(verdicts), **extra)


def test_conclusion_follows_the_data():
    lost = ["thread_exhaustion"] * 3 + ["ok"]
    children = [m for m in matrix.FIELD_METHODS if m in matrix.CHILD_METHODS]
    same = [_cell("shared-budget", m, lost) for m in children]
    assert "does not depend on the method" in " ".join(conclusions(same))
    spared = [*same[:-1], _cell("shared-budget", same[-1].method, ["ok"] * 4)]
    text = " ".join(conclusions(spared))
    assert "depends on the method" in text and same[-1].method in text


def test_in_parent_finding_says_what_one_process_carried():
    calls = [{"call": i, "rss_mb": 600.0 + 10 * i, "threads": 14, "duration_s": 5.0 / i}
             for i in (1, 2, 3)]
    cell = _cell("shared-budget", "in-parent", ["ok"])
    cell = CellRecord(**{**cell.record(), "calls": [calls], "peak_threads": [21]})
    [text] = [f for f in conclusions([cell]) if f.startswith("in-parent")]
    assert "3 calls in one process peaking at 21 threads" in text
    assert "+10 MB and +0.0 threads per call" in text


def test_report_marks_mismatches():
    report = matrix_report([_cell("baseline", "os-system", ["hang"], passed=False)])
    assert report["passed"] is False
    assert "MISMATCH" in matrix_markdown(report)
    assert report["conclusion"] == " ".join(report["findings"])


def test_address_space_finding_follows_the_data():
    cause = "address space (RLIMIT_AS): thread stacks could not be mapped"
    cells = [_cell("address-space", "os-system", ["thread_exhaustion"], exhausted=cause),
             _cell("address-space", "env-isolated", ["thread_exhaustion"],
                   exhausted="unknown: no harness limit was hit"),
             _cell("address-space", "mp-fork", ["ok"])]
    [text] = [f for f in conclusions(cells) if f.startswith("address-space")]
    assert "2 of 3 methods" in text and f"{cause} (1)" in text and "completed: mp-fork" in text
    [none] = [f for f in conclusions([_cell("address-space", "mp-fork", ["ok"])])
              if f.startswith("address-space")]
    assert "no method ran out of threads" in none


def test_the_floor_is_the_childrens_cpu_over_the_cores_plus_the_waits():
    """A matrix whose children used 40 CPU-s on 2 cores, one cell of which hung (watched
    45 s from its last progress to being stopped): a floor of 65 s; 130 s of wall is 2x."""
    from harness.repro.record import waited_s
    from harness.verdict.outcome import Outcome

    hung = Outcome.from_record({"method": "mp-fork", "condition": "c", "verdict": "hang",
                                "log_dir": "", "cpu_s": 10.0, "timeline": {
                                    "started": 100.0, "last_progress": 101.0,
                                    "stopped": 146.0, "exited": 147.0}})
    ran = Outcome.from_record({"method": "shell", "condition": "c", "verdict": "ok",
                               "log_dir": "", "cpu_s": 15.0, "timeline": {
                                   "started": 100.0, "last_progress": 110.0,
                                   "exited": 110.0}})
    assert waited_s(hung) == 45.0 and waited_s(ran) == 0.0
    cells = [CellRecord.of("c", "mp-fork", "", "hang", [hung], True),
             CellRecord.of("c", "shell", "", "ok", [ran, ran], True)]
    found = matrix_report(cells, wall_s=130.0, cores=2)["floor"]
    assert (found["child_cpu_s"], found["waits_s"], found["floor_s"]) == (40.0, 45.0, 65.0)
    assert found["ratio"] == 2.0
    assert "2.00x it" in floor_line(found)
