"""Planning: the budget, one child's need, thread caps, and how many children fit.

The per-child need comes from this command only: a probe run (`harness phase2 plan`),
its plan-cache entry or plan.json, or the first evaluation of a run, sampled once its
device work has started, times a safety margin; a completed child confirms it. Before
any of these, the prior is a default that errs large, never another command's peak.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import jsonio, untrusted
from harness.errors import InputError
from harness.host import headroom
from harness.host.limits import pid_max

MARGIN = 1.25  # over a whole run's sampled peak
EARLY_MARGIN = 1.5  # over the peak at work_started: TF adds threads later (tf.data, collectives)
NEED_BUMP = 1.25  # after a thread_exhaustion the estimate was too low
PLAN_FILE = "plan.json"


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def thread_caps(host_cpus: int, jobs: int) -> dict[str, str]:
    """Explicit pool sizes so that `jobs` children share the CPUs instead of each sizing
    its pools for the whole host (TF's default: one thread per core per pool)."""
    intra = max(1, host_cpus // max(1, jobs))
    return {
        "TF_NUM_INTRAOP_THREADS": str(intra),
        "TF_NUM_INTEROP_THREADS": str(min(2, intra)),
        "OMP_NUM_THREADS": str(intra),
    }


DEFAULT_PEAK_BASE = 32  # threads a thread-capped TF child has besides its pools (measured:
# 19-22 in all on 2 cores); the prior over-asks rather than risk a retry


def default_peak(caps: dict[str, str]) -> int:
    """A prior peak for a TF child under these caps, before any child was measured."""
    intra = int(caps.get("TF_NUM_INTRAOP_THREADS") or cpus())
    inter = int(caps.get("TF_NUM_INTEROP_THREADS") or cpus())
    return DEFAULT_PEAK_BASE + intra + inter


def need_from_peak(peak: int, margin: float = MARGIN) -> int:
    return int(peak * margin) + 1


@dataclass
class Need:
    """The per-child task need as a run learns it.

    A need from before this run (OUT/plan.json, the plan cache, a resumed ledger) or from
    a child of this run at work_started is used at once, but it is not confirmed: it may
    be stale, or the child may still grow. A child of this run that completes confirms
    it; from then on the peaks of completed children set it, until an exhaustion shows
    it was too low and it only grows. A child that died within its grant shows only a
    lower bound (`at_least`).
    """

    value: int | None = None
    completed_peak: int = 0
    bumped: bool = False
    confirmed: bool = False  # a child of this run completed: its whole peak is known
    at_least: int = 0  # shown by children that died within their grants

    def completed(self, peak: int) -> None:
        if peak <= 0:  # exited before a sample caught it: no measurement, nothing learnt
            return
        self.completed_peak = max(self.completed_peak, peak)
        self.confirmed = True
        if not self.bumped:
            self.value = max(need_from_peak(self.completed_peak), self.at_least)

    def measured(self, peak: int, margin: float) -> bool:
        """A first need from a child of this run that reached work_started; False where a
        need was already known (a completed child will confirm or correct it)."""
        if self.value is not None or peak <= 0:
            return False
        self.value = max(need_from_peak(peak, margin), self.at_least)
        return True

    def bump(self, base: int, cap: int | None = None) -> int:
        self.bumped = True
        grown = max(int(base * NEED_BUMP) + 1, self.at_least)
        self.value = grown if cap is None else min(cap, grown)
        return self.value

    def outgrown(self, shown: int) -> None:
        """A child died within its grant and showed it needs at least `shown`: an
        unconfirmed need is withdrawn (the next child is measured alone); a confirmed one
        grows to the bound."""
        self.at_least = max(self.at_least, shown)
        if not self.confirmed:
            self.value = None
        elif self.value is not None:
            self.value = max(self.value, shown)


@dataclass
class Plan:
    budget_source: str
    budget_limit: int | None
    tasks_in_use: int | None
    per_child_peak: int | None
    per_child_need: int | None
    cpus: int
    jobs: int
    concurrency: int
    caps: dict[str, str]
    reasoning: list[str] = field(default_factory=list)

    def record(self) -> dict:
        return asdict(self)


def make(jobs: int | None, tasks_budget: int | None, peak: int | None) -> Plan:
    host = cpus()
    wanted = jobs or host
    if tasks_budget is not None:
        source, limit, used = "imposed pids budget (--tasks-budget)", tasks_budget, 0
        why = [f"budget: {tasks_budget} tasks imposed on the whole run (--tasks-budget)"]
    else:
        tight = headroom.tightest()
        source, limit, used = tight.source, tight.limit, tight.in_use
        why = [f"budget: live {tight.source} {tight.limit} with {tight.in_use} in use "
               f"({tight.detail})"]
    need = need_from_peak(peak) if peak else None
    concurrency = wanted
    why.append(f"jobs: {wanted} ({'--jobs' if jobs else f'{host} schedulable CPUs'})")
    if need:
        fits = max(0, (limit - used) // need)
        why.append(f"one child peaks at {peak} threads (measured), need {need} with a "
                   f"{MARGIN}x margin: {limit - used} free tasks fit {fits}")
        concurrency = min(wanted, fits)
        if fits == 0:
            why.append("not even one child fits: raise the limit or cap threads further")
    caps = thread_caps(host, max(1, concurrency))
    why.append("thread caps per child: " + ", ".join(f"{k}={v}" for k, v in caps.items()))
    return Plan(source, limit, used, peak, need, host, wanted, concurrency, caps, why)


def save_measurement(out: Path, template: list[str], caps: dict[str, str], peak: int) -> None:
    """Remember one child's measured peak for this command, caps and host in OUT."""
    record = {"template": template, "caps": caps, "cpus": cpus(), "per_child_peak": peak}
    jsonio.write_json(Path(out) / PLAN_FILE, record)


def valid_peak(value: object) -> bool:
    """A peak a task budget can hold: a whole number of tasks in 1..pid_max."""
    return untrusted.count(value, pid_max())


def load_measurement(out: Path, template: list[str], caps: dict[str, str]) -> int | None:
    """A peak measured earlier in OUT for the same command, caps and CPU count; a plan.json
    that is there but is not one is InputError naming it."""
    path = Path(out) / PLAN_FILE
    if not path.exists() and not path.is_symlink():
        return None
    record = untrusted.read_json_object(path)
    if record is None or not valid_peak(record.get("per_child_peak")):
        raise InputError(f"{path}: not a plan (its per_child_peak must be a task count); "
                         "remove it, or choose another --out")
    same = (record.get("template") == template and record.get("caps") == caps
            and record.get("cpus") == cpus())
    return record["per_child_peak"] if same else None
