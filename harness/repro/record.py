"""One matrix cell's record: what a (condition, method) cell expected and what its
launches showed. tests/repro builds it from the outcomes; the report, the pages and
reports/repro.json read it (across xdist workers it travels as JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict

# Verdicts a launch earns by being watched doing nothing until the stall timeout.
_STALLED = (Verdict.HANG, Verdict.PIPE_DEADLOCK)


def waited_s(outcome: Outcome) -> float:
    """The wait its verdict demanded: from its last progress to being stopped (a hang or a
    pipe deadlock), from its start (a timeout); 0 for a launch that ended by itself."""
    line = outcome.timeline
    start = {Verdict.TIMEOUT: line.get("started")}.get(outcome.verdict) or (
        line.get("last_progress") if outcome.verdict in _STALLED else None)
    stopped = line.get("stopped")
    return round(stopped - start, 3) if start and stopped else 0.0


@dataclass(frozen=True)
class CellRecord:
    condition: str
    method: str
    verdicts: list[str]
    passed: bool
    expected: str
    reason: str = ""
    peak_threads: list[int] = field(default_factory=list)
    exhausted: str | None = None  # the first thread_exhaustion's cause
    gpus_seen: list = field(default_factory=list)
    orphans: int = 0
    duration_s: list[float] = field(default_factory=list)
    log_dirs: list[str] = field(default_factory=list)
    evidence: list[list[str]] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # each sibling's tree, user + system
    waited_s: float = 0.0  # the longest stall or timeout wait its verdicts demanded
    calls: list[list[dict]] = field(default_factory=list)  # in-parent: each launch's calls

    @classmethod
    def of(cls, condition: str, method: str, reason: str, expected: str,
           outcomes: list[Outcome], passed: bool) -> CellRecord:
        return cls(
            condition=condition, method=method, reason=reason, expected=expected,
            verdicts=[str(o.verdict) for o in outcomes], passed=passed,
            peak_threads=[o.peak_threads for o in outcomes],
            exhausted=next((o.exhausted for o in outcomes if o.exhausted), None),
            gpus_seen=[o.devices.get("physical_gpus") for o in outcomes if o.devices],
            orphans=sum(o.orphans for o in outcomes),
            duration_s=[o.duration_s for o in outcomes],
            log_dirs=[str(o.log_dir) for o in outcomes],
            evidence=[o.evidence[:3] for o in outcomes],
            cpu_s=[o.cpu_s or 0.0 for o in outcomes],
            waited_s=max((waited_s(o) for o in outcomes), default=0.0),  # side by side
            calls=[o.calls for o in outcomes if o.calls])

    def record(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.record())

    @classmethod
    def from_json(cls, text: str) -> CellRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})
