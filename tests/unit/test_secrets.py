"""Planted secrets never reach a file the harness writes: isolated children never get
them, and every record the harness writes itself is redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.launch.command import reference
from harness.launch.condition import Condition
from harness.phase2 import RunOptions, run
from harness.repro import matrix
from harness.repro.cell import run_cell
from harness.repro.record import CellRecord
from harness.repro.report import matrix_report, write_matrix
from tests.fixes.conftest import FAKE_TEMPLATE
from tests.unit.conftest import fake

SECRETS = {"MY_API_TOKEN": "planted-token-8f3a1c", "DB_PASSWORD": "planted-pass-77d2e9",
           "AWS_SECRET_ACCESS_KEY": "planted-aws-5b6c0d"}


@pytest.fixture
def planted(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    return SECRETS


def _files_without_secrets(root: Path) -> int:
    count = 0
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            for value in SECRETS.values():
                assert value.encode() not in text, f"{value} leaked into {path}"
            count += 1
    return count


@pytest.mark.parametrize("method", ["env-isolated", "phase2"])
def test_isolated_children_never_see_secrets(run_fake, planted, tmp_path, method):
    outcomes = run_fake("print-env", method=method,
                        condition=Condition(env={"DB_PASSWORD": SECRETS["DB_PASSWORD"]}))
    [o] = outcomes
    assert o.verdict == "ok", o.evidence
    child_env = json.loads(Path(o.log_dir, "stdout.log").read_text())
    assert not set(SECRETS) & set(child_env)
    assert _files_without_secrets(Path(o.log_dir).parent) >= 5


def test_records_of_field_methods_are_redacted(run_fake, planted, tmp_path):
    """The field's methods pass the environment on (as in the field); the workload prints
    none of it, and nothing the harness writes carries a value."""
    for method in ("subprocess-pipes", "os-system"):
        [o] = run_fake("ok", method=method, command=fake("ok"),
                       condition=Condition(env={"DB_PASSWORD": SECRETS["DB_PASSWORD"]}))
        assert o.verdict == "ok"
    assert _files_without_secrets(tmp_path) >= 10


def test_reference_workload_logs_and_report_are_clean(planted, tmp_path):
    row = next(r for r in matrix.ROWS if r.name == "tight-budget")
    outcomes = run_cell(reference(), row.condition, "subprocess-pipes",
                               tmp_path / "logs", 300, 60)
    # Even a careless record (the whole environment as its reason) is redacted on the way.
    cell = CellRecord.of(row.name, "subprocess-pipes", str(dict(os.environ)), "x", outcomes,
                         True)
    write_matrix(matrix_report([cell]), tmp_path / "reports")
    assert _files_without_secrets(tmp_path) >= 5


def test_runner_results_and_ledger_are_clean(planted, tmp_path):
    grid = [{"mode": "print-env", "arg": "-"}, {"mode": "ok", "arg": "-"}]
    results = run(FAKE_TEMPLATE, grid, RunOptions(out=tmp_path, live=False,
                                                  env={"SERVICE_TOKEN": "planted-svc-91aa"}))
    assert [e["verdict"] for e in results["evaluations"]] == ["ok", "ok"]
    assert _files_without_secrets(tmp_path) >= 8
    assert b"planted-svc-91aa" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*")
                                                 if p.is_file())
