"""The reproduction matrix: every cell launches the real command and asserts its verdicts.

Cells and expectations come from harness.repro.matrix.ROWS; nothing is written per cell.
"""

from __future__ import annotations

import pytest

from harness.repro import matrix
from harness.repro.record import CellRecord

pytestmark = [pytest.mark.repro, pytest.mark.timeout(900)]


def _explain(outcomes) -> str:
    return "\n".join(f"  #{o.sibling} {o.verdict} exit={o.exit_code} sig={o.signal} "
                     f"log={o.log_dir}\n    " + "\n    ".join(o.evidence[:4])
                     for o in outcomes)


def _check(check: str, row: matrix.Row, method: str, outcomes, cells) -> None:
    if check == "stack_dump_on_hang":
        for o in outcomes:
            if o.verdict == "hang":
                assert o.stack_dump, f"hang without a stack dump: {o.log_dir}"
                with open(o.stack_dump) as f:
                    assert f.read().strip(), f"empty stack dump {o.stack_dump}"
    elif check == "zero_gpus":
        seen = [o.devices["physical_gpus"] for o in outcomes if o.devices]
        assert seen and set(seen) == {0}, f"the child saw GPUs: {seen}"
    elif check == "address_space_cause":
        for o in outcomes:
            if o.verdict == "thread_exhaustion":
                assert o.exhausted and o.exhausted.startswith("address space"), o.exhausted
    elif check == "fewer_threads_than_many_core":
        many = next(r for r in matrix.ROWS if r.name == "many-core-host")
        base = cells.run(many, method)
        if method not in matrix.FIELD_METHODS:  # the runner caps threads itself anyway
            assert {o.verdict for o in base} == {"ok"}, _explain(base)
            return
        completed = [o.peak_threads for o in base if o.verdict == "ok"]
        if completed:  # a 32-core child that ran to the end shows its full peak
            assert max(o.peak_threads for o in outcomes) < min(completed), \
                "caps did not lower the peak"
        assert sum(o.verdict == "ok" for o in outcomes) > len(completed), \
            "caps did not let more siblings complete"
    else:
        raise AssertionError(f"unknown check {check!r} in harness.repro.matrix")


IN_PARENT_CALLS = 3  # the in-parent method's default


def test_cell(cell, cells, gpu_host, record_property):
    row, method = cell
    expected = row.expectation(method, gpu_host)
    outcomes = cells.run(row, method)
    verdicts = [o.verdict for o in outcomes]
    passed = expected.holds(verdicts)
    record = CellRecord.of(row.name, method, row.reason, str(expected), outcomes, passed)
    record_property("repro_cell", record.to_json())

    # in-parent is one process running every call, whatever the condition's siblings
    assert len(outcomes) == (1 if method == matrix.IN_PARENT else row.condition.siblings)
    if method == matrix.IN_PARENT:
        assert all(len(o.calls) == IN_PARENT_CALLS for o in outcomes if o.verdict == "ok")
    assert passed, f"{row.name}/{method}: expected {expected}, got {verdicts}\n" \
                   f"{_explain(outcomes)}"
    for o in outcomes:
        assert o.orphans == 0, f"orphans after cleanup: {o.evidence}"
        if o.verdict == "ok":
            assert o.completed and o.work_started is not False, _explain([o])
        if o.verdict == "thread_exhaustion":
            assert any("pthread" in e or "thread" in e or "pids.events" in e
                       for e in o.evidence), _explain([o])
    for check in row.checks:
        _check(check, row, method, outcomes, cells)
