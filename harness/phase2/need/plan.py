"""A plan: the budget, one child's need, thread caps, and how many children fit; and the
peak one child of this command showed, kept in OUT/plan.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import jsonio, untrusted
from harness.errors import InputError
from harness.host import headroom
from harness.host.limits import pid_max
from harness.phase2.layout import Layout
from harness.phase2.need.caps import Recipe, cpus, thread_caps
from harness.phase2.need.estimate import MARGIN, need_from_peak


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


def save_measurement(out: Path, recipe: Recipe, peak: int) -> None:
    """Remember one child's measured peak for this command, caps and host in OUT."""
    record = {"template": recipe.template, "caps": recipe.caps, "cpus": cpus(),
              "per_child_peak": peak}
    jsonio.write_json(Layout(Path(out)).plan, record)


def valid_peak(value: object) -> bool:
    """A peak a task budget can hold: a whole number of tasks in 1..pid_max."""
    return untrusted.count(value, pid_max())


def load_measurement(out: Path, recipe: Recipe) -> int | None:
    """A peak measured earlier in OUT for the same command, caps and CPU count; a plan.json
    that is there but is not one is InputError naming it."""
    path = Layout(Path(out)).plan
    if not path.exists() and not path.is_symlink():
        return None
    record = untrusted.read_json_object(path)
    if record is None or not valid_peak(record.get("per_child_peak")):
        raise InputError(f"{path}: not a plan (its per_child_peak must be a task count); "
                         "remove it, or choose another --out")
    same = (record.get("template") == recipe.template and record.get("caps") == recipe.caps
            and record.get("cpus") == cpus())
    return record["per_child_peak"] if same else None
