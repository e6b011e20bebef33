"""One finished evaluation as a search sees it: what a Pool's future resolves to, built
from its ledger row and the reports its child made; and the params' digest, by which a
resumed search finds what the ledger already holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from harness.verdict.verdicts import Verdict


@dataclass(frozen=True)
class Evaluated:
    """One finished evaluation, as a Pool's future resolves it."""

    key: str
    index: int
    params: dict
    verdict: Verdict
    score: float | None
    metrics: dict | None
    reports: tuple[tuple[int, dict], ...]  # (step, metrics) as the child reported them
    attempts: int
    log_dir: str | None
    duration_s: float = 0.0
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: dict, reports: Iterable[tuple[int, dict]] = ()) -> Evaluated:
        return cls(key=row["key"], index=row["index"], params=row["params"],
                   verdict=Verdict(row["verdict"]), score=row.get("score"),
                   metrics=row.get("metrics"), reports=tuple(reports),
                   attempts=row["attempts"], log_dir=row.get("log_dir"),
                   duration_s=row.get("duration_s") or 0.0, notes=tuple(row.get("notes") or ()))


def digest(params: dict) -> str:
    """Params as the ledger keys them: a search submitting them again is told the result."""
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
