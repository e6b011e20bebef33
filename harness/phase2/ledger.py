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

from harness import envpolicy, jsonio
from harness.errors import InputError

RUN_FILE = "run.json"
LEDGER_FILE = "ledger.jsonl"
RESULTS_FILE = "results.json"




def _atomic_json(path: Path, data: dict) -> None:
    jsonio.write_json(path, data, durable=True, filter_text=envpolicy.redact)


@dataclass
class Ledger:
    out: Path
    finished: dict[str, dict]

    @classmethod
    def open(cls, out: Path, identity: dict, resume: bool) -> Ledger:
        """Check OUT against this run before anything launches; nothing half-written."""
        run_file, ledger_file = out / RUN_FILE, out / LEDGER_FILE
        if run_file.exists() and not resume:
            raise InputError(f"{str(out)!r} already holds a Phase 2 run: pass --resume to "
                              "continue it, or choose another --out")
        if resume and run_file.exists():
            previous = json.loads(run_file.read_text())
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
        line = envpolicy.redact(json.dumps(record, default=str)) + "\n"
        with open(self.out / LEDGER_FILE, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.finished[record["key"]] = record

    def write_results(self, results: dict) -> None:
        _atomic_json(self.out / RESULTS_FILE, results)


def read(path: Path) -> dict[str, dict]:
    """key -> record; a torn last line (killed mid-write) is ignored, later lines win."""
    return {record["key"]: record for record in jsonio.read_jsonl(path, "key")}
