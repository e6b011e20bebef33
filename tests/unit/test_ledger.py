from __future__ import annotations

import json

import pytest

from harness.errors import InputError
from harness.phase2.ledger import Ledger, read

IDENTITY = {"template": ["x", "{a}"], "grid": [{"a": 1}, {"a": 2}], "strategy": "runner"}


def _row(key: str, verdict: str) -> dict:
    """A finished evaluation's record, as the runner appends it."""
    return {"key": key, "params": {"a": 1}, "verdict": verdict, "attempts": 1,
            "attempt_verdicts": [verdict], "duration_s": 1.5, "started_at": 1.0e9,
            "peak_threads": 12, "cpu_s": 1.2}


def test_append_is_durable_and_resume_reads_it(tmp_path):
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.append(_row("0000-a", "ok"))
    with open(tmp_path / "ledger.jsonl", "a") as f:
        f.write('{"key": "0001-b", "verd')  # a runner killed mid-write
    again = Ledger.open(tmp_path, IDENTITY, resume=True)
    assert list(again.finished) == ["0000-a"]


def test_existing_run_needs_resume(tmp_path):
    Ledger.open(tmp_path, IDENTITY, resume=False)
    with pytest.raises(InputError, match="pass --resume"):
        Ledger.open(tmp_path, IDENTITY, resume=False)


def test_resume_refuses_another_grid(tmp_path):
    Ledger.open(tmp_path, IDENTITY, resume=False)
    with pytest.raises(InputError, match="different grid"):
        Ledger.open(tmp_path, {**IDENTITY, "grid": [{"a": 3}]}, resume=True)


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="bad --out"):
        Ledger.open(blocker / "out", IDENTITY, resume=False)


def test_later_records_win(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (
        _row("k", "thread_exhaustion"), _row("k", "ok"))))
    assert read(path)["k"]["verdict"] == "ok"


def test_results_are_written_atomically_and_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", "abcdef123")
    ledger = Ledger.open(tmp_path, IDENTITY, resume=False)
    ledger.write_results({"evaluations": [], "summary": {"note": "abcdef123"}})
    assert "abcdef123" not in (tmp_path / "results.json").read_text()
    assert not list(tmp_path.glob(".*.tmp"))
