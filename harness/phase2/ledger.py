"""Durability: OUT/run.json (what this run is), OUT/ledger.jsonl (one fsynced line per
finished evaluation) and OUT/results.json (atomic snapshot with the summary).

A runner killed with SIGKILL loses at most the evaluations in flight; `--resume`
reads the ledger and skips what finished, so nothing is lost, duplicated or
redone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness import envpolicy, jsonio, untrusted
from harness.errors import InputError
from harness.verdict.verdicts import VERDICTS

RUN_FILE = "run.json"
LEDGER_FILE = "ledger.jsonl"
RESULTS_FILE = "results.json"
# What the harness itself puts in an --out before a run does (`phase2 plan --out OUT`).
HARNESS_MADE = {RUN_FILE, LEDGER_FILE, RESULTS_FILE, "plan.json", "plan-probe", "evals",
                "report.html", ".harness"}




def _atomic_json(path: Path, data: dict) -> None:
    jsonio.write_json(path, data, durable=True, redact=envpolicy.redact_data)


def _bad(path: Path, why: str) -> InputError:
    return InputError(f"{path}: {why}; fix or remove it, or choose another --out")


def _check_out(out: Path, resume: bool) -> None:
    """OUT is a new or empty directory, or this harness's run (with --resume): never a
    directory of other files the run would write into."""
    run_file = out / RUN_FILE
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"bad --out {str(out)!r}: not a directory")
    if run_file.exists() and not resume:
        raise InputError(f"{str(out)!r} already holds a Phase 2 run: pass --resume to "
                         "continue it, or choose another --out")
    others = [p.name for p in out.iterdir() if p.name not in HARNESS_MADE] if out.is_dir() \
        else []
    if not run_file.exists() and others:
        raise InputError(f"--out {str(out)!r} is not empty and holds no Phase 2 run "
                         f"({RUN_FILE}): its files could be overwritten; choose an empty "
                         "or new directory")


def _previous(run_file: Path) -> dict:
    """run.json as this harness wrote it, or InputError naming it."""
    previous = untrusted.read_json_object(run_file)
    if previous is None:
        raise _bad(run_file, "not a JSON object")
    for field, kind in (("template", list), ("grid", list), ("strategy", str)):
        if not isinstance(previous.get(field), kind):
            raise _bad(run_file, f"its {field!r} is not a {kind.__name__}")
    return previous


@dataclass
class Ledger:
    out: Path
    finished: dict[str, dict]

    @classmethod
    def open(cls, out: Path, identity: dict, resume: bool) -> Ledger:
        """Check OUT against this run before anything launches; nothing half-written."""
        run_file, ledger_file = out / RUN_FILE, out / LEDGER_FILE
        _check_out(out, resume)
        if resume and run_file.exists():
            previous = _previous(run_file)
            for field in ("template", "grid", "strategy"):
                if previous.get(field) != identity.get(field):
                    raise InputError(f"--resume: {str(out)!r} holds a run with a different "
                                     f"{field}; choose another --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise InputError(f"bad --out {str(out)!r}: {exc.strerror}") from None
        finished = read(ledger_file) if resume else {}
        if not run_file.exists():
            _atomic_json(run_file, identity)
        return cls(out, finished)

    def append(self, record: dict) -> None:
        line = json.dumps(envpolicy.redact_data(record), default=str) + "\n"
        with open(self.out / LEDGER_FILE, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.finished[record["key"]] = record

    def write_results(self, results: dict) -> None:
        _atomic_json(self.out / RESULTS_FILE, results)


# A ledger line's fields and what each must be: what --resume and results.json read.
_FIELDS = {"key": str, "params": dict, "verdict": str, "attempts": int,
           "attempt_verdicts": list, "duration_s": (int, float), "started_at": (int, float),
           "peak_threads": int, "cpu_s": (int, float)}


_NAMES = {"duration_s": "number", "started_at": "number", "cpu_s": "number"}


def problem(record: object) -> str | None:
    """Why a ledger line is not a finished evaluation's record, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for field, kind in _FIELDS.items():
        value = record.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            return (f"its {field!r} is {str(value)[:40]!r}, not a "
                    f"{_NAMES.get(field, getattr(kind, '__name__', kind))}")
    if record["verdict"] not in VERDICTS:
        return f"its verdict {record['verdict'][:40]!r} is not one"
    if not untrusted.count(record["attempts"], 10**6) or record["peak_threads"] < 0:
        return "its counts are out of range"
    if not all(map(untrusted.real_number, (record["duration_s"], record["cpu_s"],
                                           record["started_at"]))):
        return "its times are out of range"
    return None


def read(path: Path) -> dict[str, dict]:
    """key -> record; a torn last line (killed mid-write) is ignored, later lines win; any
    other line that is not a finished evaluation's record is InputError naming it."""
    found: dict[str, dict] = {}
    lines = list(untrusted.lines(path))
    for number, line in enumerate(lines, 1):
        try:
            record = untrusted.loads(line)
        except ValueError:
            if number == len(lines) and not line.endswith("\n"):
                continue  # torn by a kill mid-write
            raise _bad(path, f"line {number} is not JSON") from None
        if (why := problem(record)) is not None:
            raise _bad(path, f"line {number} is not a finished evaluation ({why})")
        found[record["key"]] = record
    return found
