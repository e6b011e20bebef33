from __future__ import annotations

import json
import os

import pytest

from harness.errors import InputError
from harness.phase2.record.ledger import Ledger

IDENTITY = {"template": ["x", "{a}"], "grid": [{"a": 1}, {"a": 2}], "strategy": "runner"}


def _row(key: str, verdict: str, index: int = 0) -> dict:
    """A finished evaluation's record, as the runner appends it."""
    return {"key": key, "index": index, "params": {"a": 1}, "verdict": verdict, "attempts": 1,
            "attempt_verdicts": [verdict], "duration_s": 1.5, "started_at": 1.0e9,
            "peak_threads": 12, "cpu_s": 1.2}


def test_append_is_durable_and_resume_reads_it(tmp_path):
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.append(_row("0000-a", "ok"))
    with open(tmp_path / "ledger.jsonl", "a") as f:
        f.write('{"key": "0001-b", "verd')  # a runner killed mid-write
    ledger.close()  # as its process ending does
    again = Ledger.open(tmp_path, IDENTITY, resume=True)
    assert again.has(0) and not again.has(1)
    assert [r["key"] for r in again.rows()] == ["0000-a"]


def test_run_json_is_the_identity_streamed(tmp_path):
    """run.json is written entry by entry (a grid of 100,000 is never one string) and is
    still one JSON object that --resume compares."""
    Ledger.open(tmp_path, IDENTITY, resume=False)
    assert json.loads((tmp_path / "run.json").read_text()) == IDENTITY


def test_existing_run_needs_resume(tmp_path):
    Ledger.open(tmp_path, IDENTITY, resume=False)
    with pytest.raises(InputError, match="pass --resume"):
        Ledger.open(tmp_path, IDENTITY, resume=False)


def test_resume_refuses_another_grid(tmp_path):
    Ledger.open(tmp_path, IDENTITY, resume=False).close()
    with pytest.raises(InputError, match="different grid"):
        Ledger.open(tmp_path, {**IDENTITY, "grid": [{"a": 3}]}, resume=True)


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="bad --out"):
        Ledger.open(blocker / "out", IDENTITY, resume=False)


def test_later_records_win(tmp_path):
    """--retry-failed appends a second line for an evaluation: the later one counts, in
    this run and after a resume."""
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.append(_row("0000-a", "thread_exhaustion"))
    ledger.append(_row("0001-b", "ok", index=1))
    ledger.append(_row("0000-a", "ok"))
    assert ledger.row(0)["verdict"] == "ok"
    ledger.close()
    again = Ledger.open(tmp_path, IDENTITY, resume=True)
    assert [(r["key"], r["verdict"]) for r in again.rows()] == [("0000-a", "ok"),
                                                                 ("0001-b", "ok")]


def test_results_are_written_atomically_and_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", "abcdef123")
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.write_results({"note": "abcdef123"})
    assert "abcdef123" not in (tmp_path / "results.json").read_text()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("torn", ['{"key": "0001-b", "verd', None])
def test_a_resumed_ledger_appends_on_a_line_of_its_own(tmp_path, torn):
    """A line torn by a kill (or whole but for its newline) never swallows the next
    append: the ledger resumes again after it."""
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.append(_row("0000-a", "ok"))
    with open(tmp_path / "ledger.jsonl", "a") as f:
        f.write(torn or json.dumps(_row("0001-b", "crash", index=1)))
    ledger.close()
    resumed = Ledger.open(tmp_path, IDENTITY, resume=True)
    resumed.append(_row("0001-b", "ok", index=1))
    resumed.close()
    again = Ledger.open(tmp_path, IDENTITY, resume=True)
    assert [(r["key"], r["verdict"]) for r in again.rows()] == [("0000-a", "ok"),
                                                                 ("0001-b", "ok")]


def test_one_run_per_out_the_second_is_told_whose_it_is(tmp_path):
    first = Ledger.open(tmp_path, IDENTITY, resume=False)
    with pytest.raises(InputError, match=rf"in use by a live run \(pid {os.getpid()}\)"):
        Ledger.open(tmp_path, IDENTITY, resume=True)
    first.close()
    Ledger.open(tmp_path, IDENTITY, resume=True).close()  # free again once it ended


@pytest.mark.parametrize("changed", [True, 1.0, "1"])
def test_resume_compares_the_grid_as_written_not_as_python_compares(tmp_path, changed):
    identity = {**IDENTITY, "grid": [{"a": 1}, {"a": 2}]}
    Ledger.open(tmp_path, identity, resume=False).close()
    with pytest.raises(InputError, match="different grid"):
        Ledger.open(tmp_path, {**identity, "grid": [{"a": changed}, {"a": 2}]}, resume=True)
