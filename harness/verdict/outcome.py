"""Outcome: one record per launch, built once from what supervision observed and what
classify() concluded, and written once (outcome.json)."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass, field, fields

from harness import envpolicy, jsonio
from harness.supervise import gpuwork
from harness.supervise.files import LaunchFiles
from harness.supervise.observation import Observation
from harness.verdict import exhaustion
from harness.verdict.calls import growth
from harness.verdict.classify import classify
from harness.verdict.probes import Observed, tail
from harness.verdict.verdicts import Verdict

STDERR_TAIL_BYTES = 2000

@dataclass(frozen=True)
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
    calls: list[dict] = field(default_factory=list)  # in-parent: one record per call

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    def record(self) -> dict:
        return asdict(self)

    def save(self, files: LaunchFiles) -> str | None:
        """outcome.json, written once per attempt: atomically, with secret values redacted,
        and never over one the harness wrote (an outcome is complete when built). What a
        child of another user planted at that name is removed, not followed. Why it could
        not be written (a full disk), or None."""
        for _ in range(2):
            try:
                jsonio.write_json(files.outcome, self.record(), redact=envpolicy.redact_data,
                                  exclusive=True)
                return None
            except FileExistsError:
                planted = files.outcome.lstat()
                if not stat.S_ISLNK(planted.st_mode) and planted.st_uid == os.geteuid():
                    raise  # the harness's own: an outcome is written once
                files.outcome.unlink()
            except OSError as exc:  # ENOSPC, EDQUOT: the outcome stays in memory
                return exc.strerror or str(exc)
        return None

    @classmethod
    def from_record(cls, record: dict) -> Outcome:
        """An Outcome from its record (outcome.json, a node's reply), or from the few
        fields a launch that never ran has: the rest take their empty values."""
        known = {f.name for f in fields(cls)}
        return cls(**{**_EMPTY, **{k: v for k, v in record.items() if k in known}})


_EMPTY: dict[str, object] = {"sibling": 0, "exit_code": None, "signal": None, "work_started": None,
          "completed": None, "gpu_work": {}, "peak_threads": 0, "peak_rss": 0,
          "duration_s": 0.0, "orphans": 0, "stragglers": [], "budget": {}, "exhausted": None,
          "stderr_tail": ""}


@dataclass(frozen=True)
class LaunchFacts:
    """What the launch group knows of one launch besides what supervision saw."""

    method: str
    condition: str
    command: str
    index: int
    budget: dict  # the budget's record, its counters at the end and this launch's own
    limits: dict
    gpu_expected: bool  # a GPU host: a run without GPU work is flagged
    grant: int | None = None  # its own pids.max at the end, where it had one
    notes: tuple[str, ...] = ()  # what the caller knew before it started
    calls: list[dict] = field(default_factory=list)  # in-parent: the calls on record


def _budget_story(verdict: Verdict, facts: LaunchFacts) -> list[str]:
    """Whose budget refused what: its own grant, or (context only) its siblings'."""
    own = facts.budget.get("refused_this_launch") or 0
    shared = facts.budget.get("refused_all_launches") or 0
    story = []
    if verdict == Verdict.THREAD_EXHAUSTION and facts.grant is not None and own:
        story.append(f"its own grant of {facts.grant} tasks (pids.max of its launch cgroup) "
                     "ran out; its neighbours kept theirs")
    if shared > own:  # a sibling's refusals are not this launch's evidence
        story.append(f"the shared budget refused {shared - own} thread/process creations of "
                     "other launches of this group")
    return story


def build(obs: Observation, result: dict | None, seen: Observed, facts: LaunchFacts,
          metrics: dict | None) -> Outcome:
    """The whole outcome of one launch, from what was seen and what is known of it."""
    gpu_work = gpuwork.judge(obs.gpu_work, seen.devices)
    obs.gpu_work = gpu_work
    found = classify(obs, result, seen, budget=facts.budget, limits=facts.limits,
                     events_max_delta=facts.budget.get("refused_this_launch") or 0,
                     gpu_expected=facts.gpu_expected)
    evidence = [*found.evidence, *_budget_story(found.verdict, facts)]
    duration = obs.duration_s
    if result and result.get("t_end") and result.get("t_launch"):
        duration = round(result["t_end"] - result["t_launch"], 3)
    if obs.stragglers:
        evidence.append(f"left running after the parent returned, killed: {obs.stragglers}")
    if obs.orphans:
        evidence.append(f"ORPHANS still alive after cleanup: {obs.orphans}")
    evidence += _calls_story(facts.calls, result) + obs.notes
    if found.verdict.ok and (hit := exhaustion.find([obs.files.stderr])):
        evidence.append(f"completed although {hit.runtime} could not create a thread: "
                        f"{hit.line[:160]} (it carried on with fewer threads)")
    # The kernel's pids.peak of a cgroup holding only this launch's tree is exact where
    # sampling can miss short-lived threads.
    peak = max(obs.peak_threads, facts.budget.get("launch_peak") or 0)
    return Outcome(
        method=facts.method, condition=facts.condition, sibling=facts.index,
        verdict=found.verdict, exit_code=found.exit_code, signal=found.signal,
        work_started=seen.work_started,
        completed=seen.completed if seen.completed is not None else found.verdict.ok,
        gpu_work=gpu_work, peak_threads=peak, peak_rss=obs.peak_rss, duration_s=duration,
        orphans=len(obs.orphans), stragglers=obs.stragglers, budget=facts.budget,
        exhausted=found.exhausted, stderr_tail=tail(obs.files.stderr, STDERR_TAIL_BYTES),
        log_dir=str(obs.files.dir),
        evidence=[*evidence, *facts.notes, *seen.evidence], devices=seen.devices,
        metrics=metrics, stack_dump=obs.stack_dump, command=facts.command,
        timeline=obs.timeline, peak_vms=obs.peak_vms, cpu_s=obs.cpu_s, calls=facts.calls)


def _calls_story(calls: list[dict], result: dict | None) -> list[str]:
    """In-parent: what grew from call to call, and the call that ended the launch."""
    if not calls and not (result or {}).get("detail", {}).get("calls"):
        return []
    story = growth(calls)
    failed = [c for c in calls if c["verdict"] != Verdict.OK]
    if failed:
        story.append(f"call {failed[0]['call']}: {failed[0]['verdict']}"
                     + (f" ({failed[0]['error']})" if failed[0].get("error") else ""))
    asked = (result or {}).get("detail", {}).get("calls")
    if result and result.get("launched_by") == "itself":
        story.append(f"the process died in call {len(calls) + 1}; {len(calls)} call(s) "
                     "before it are on record")
    elif asked and len(calls) < asked:
        story.append(f"{len(calls)} of {asked} calls on record")
    return story
