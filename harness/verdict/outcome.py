"""Outcome: one record per launch, built once from what supervision observed and what
classify() concluded, and written once (outcome.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness import envpolicy, jsonio
from harness.supervise import gpuwork
from harness.supervise.observation import Observation
from harness.verdict import exhaustion
from harness.verdict.classify import classify
from harness.verdict.probes import Observed, tail
from harness.verdict.verdicts import Verdict

STDERR_TAIL_BYTES = 2000

@dataclass
class Outcome:
    method: str
    condition: str
    sibling: int
    verdict: Verdict
    exit_code: int | None
    signal: int | None
    work_started: bool | None
    completed: bool | None
    gpu_work: dict
    peak_threads: int
    peak_rss: int
    duration_s: float
    orphans: int
    stragglers: list[str]
    budget: dict
    exhausted: str | None  # for thread_exhaustion: which limit ran out
    stderr_tail: str
    log_dir: str
    evidence: list[str] = field(default_factory=list)
    devices: dict | None = None
    metrics: dict | None = None
    stack_dump: str | None = None
    command: str = ""
    timeline: dict = field(default_factory=dict)
    peak_vms: int = 0  # the largest VmSize one process of the launch reached (sampled)
    cpu_s: float = 0.0  # user + system seconds of the launch's processes

    def __post_init__(self) -> None:
        self.verdict = Verdict(self.verdict)

    def record(self) -> dict:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Atomically, with secret values redacted."""
        jsonio.write_json(path, self.record(), filter_text=envpolicy.redact)

    @classmethod
    def from_record(cls, record: dict) -> Outcome:
        """An Outcome from its record (outcome.json, a node's reply), or from the few
        fields a launch that never ran has: the rest take their empty values."""
        known = {f.name for f in fields(cls)}
        return cls(**{**_EMPTY, **{k: v for k, v in record.items() if k in known}})


_EMPTY = {"sibling": 0, "exit_code": None, "signal": None, "work_started": None,
          "completed": None, "gpu_work": {}, "peak_threads": 0, "peak_rss": 0,
          "duration_s": 0.0, "orphans": 0, "stragglers": [], "budget": {}, "exhausted": None,
          "stderr_tail": ""}


def build(obs: Observation, result: dict | None, seen: Observed, *, method: str,
          condition: str, command: str, budget: dict, limits: dict, events_max_delta: int,
          gpu_expected: bool, metrics: dict | None) -> Outcome:
    obs.gpu_work = gpuwork.judge(obs.gpu_work, seen.devices)
    found = classify(obs, result, seen, budget=budget, limits=limits,
                     events_max_delta=events_max_delta, gpu_expected=gpu_expected)
    evidence = found.evidence
    duration = obs.duration_s
    if result and result.get("t_end") and result.get("t_launch"):
        duration = round(result["t_end"] - result["t_launch"], 3)
    if obs.stragglers:
        evidence.append(f"left running after the parent returned, killed: {obs.stragglers}")
    if obs.orphans:
        evidence.append(f"ORPHANS still alive after cleanup: {obs.orphans}")
    if found.verdict == Verdict.OK and (hit := exhaustion.find([obs.files.stderr])):
        evidence.append(f"completed although {hit.runtime} could not create a thread: "
                        f"{hit.line[:160]} (it carried on with fewer threads)")
    return Outcome(
        method=method, condition=condition, sibling=obs.index, verdict=found.verdict,
        exit_code=found.exit_code, signal=found.signal, work_started=seen.work_started,
        completed=seen.completed if seen.completed is not None else found.verdict == "ok",
        gpu_work=obs.gpu_work, peak_threads=obs.peak_threads, peak_rss=obs.peak_rss,
        duration_s=duration, orphans=len(obs.orphans), stragglers=obs.stragglers,
        budget=budget, exhausted=found.exhausted,
        stderr_tail=tail(obs.files.stderr, STDERR_TAIL_BYTES), log_dir=str(obs.files.dir),
        evidence=[*evidence, *seen.evidence], devices=seen.devices, metrics=metrics,
        stack_dump=obs.stack_dump, command=command, timeline=obs.timeline,
        peak_vms=obs.peak_vms, cpu_s=obs.cpu_s)
