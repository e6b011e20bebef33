"""The Phase 2 runner: a grid of training evaluations, run reliably and fast.

run() = check inputs -> open the executor -> open the ledger -> schedule what is
not finished -> results.json. The runner talks to executors only through the
contract (executor.py); plan() = one probe launch -> the budget, per-child need
and concurrency the runner would use, with the reasoning.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import InputError
from harness.launch import spec as launch
from harness.launch.condition import Condition
from harness.launch.group import Launch, LaunchGroup
from harness.phase2 import executors
from harness.phase2 import grid as grids
from harness.phase2.executors.base import Attempt, Executor
from harness.phase2.need import cache as plan_cache
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import DEFAULT_PEAK_BASE, cpus, default_peak, thread_caps
from harness.phase2.options import DEFAULT_METRIC, RunOptions
from harness.phase2.record.ledger import DECISIONS_FILE, Ledger
from harness.phase2.record.row import record
from harness.phase2.record.snapshots import Snapshots
from harness.phase2.record.summary import Tally
from harness.phase2.schedule.loop import schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task
from harness.phase2.strategy import STRATEGIES
from harness.phase2.view.progress import Reporter
from harness.supervise.files import LaunchFiles
from harness.verdict.verdicts import Verdict


def prepare(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
            kind: type[Executor] | None = None
            ) -> tuple[list[str], grids.Evaluations, type[Executor]]:
    """Validate everything a run needs before anything launches (InputError)."""
    if opts.strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {opts.strategy!r}: use "
                              f"{', '.join(STRATEGIES)}")
    template = template or grids.default_template()
    grid = grids.validate(grid if grid is not None else grids.default_grid())
    grids.check(template, grid)
    evaluations = grids.evaluations(grid, opts.max_evals)
    launch.check_command(grids.render(template, evaluations[0]))
    kind = kind or executors.load(opts.executor)
    kind.check(opts)
    Condition(parent_tf=opts.parent_tf, env=opts.env, unset=opts.unset)  # validates
    return template, evaluations, kind


def run(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
        kind: type[Executor] | None = None) -> dict:
    """The grid's evaluations through the executor opts.executor names (or `kind`, an
    Executor class of the caller's own), to results.json; the results, whose evaluations
    are read from the ledger as they are iterated."""
    template, evaluations, kind = prepare(template, grid, opts, kind)
    policy = RetryPolicy(retries=STRATEGIES[opts.strategy].retries)
    with kind.open(opts, template, policy) as executor:  # refusals come before OUT exists
        identity = {"template": template, "grid": evaluations.params,
                    "strategy": opts.strategy}
        ledger = Ledger.open(Path(opts.out), identity, opts.resume)
        policy.log.stream_to(Path(opts.out) / DECISIONS_FILE)
        tally = _tally_of(ledger, opts)
        todo = [i for i in range(len(evaluations)) if not ledger.has(i)]
        if STRATEGIES[opts.strategy].admission == "budget":
            _prepare_policy(policy, opts, template, executor.caps, tally)
            todo = _longest_first(todo, evaluations, opts, template, executor.caps)
        snaps = Snapshots(Path(opts.out), ledger, tally, policy, executor, evaluations, opts)
        facts = executor.facts()
        with Reporter(len(evaluations), len(evaluations) - len(todo), live=opts.live,
                      cpus=facts.get("cpus"), jobs=facts.get("jobs")) as report:

            def finish(attempt: Attempt) -> None:
                row = record(attempt.task, attempt.outcome, opts.metric, attempt.node)
                ledger.append(row)
                tally.add(row)
                report.finished(row["key"], row["verdict"], row["duration_s"], row["score"],
                                row["cpu_s"])
                snaps.maybe()

            def attempted(attempt: Attempt) -> None:
                report.attempt(attempt.task.evaluation.key, attempt.task.attempts,
                               attempt.outcome.verdict)

            tasks = (Task(e, grids.render(template, e)) for e in map(evaluations.__getitem__,
                                                                       todo))
            interrupted = schedule(executor, policy, tasks, finish, attempted, opts.deadline_s,
                                   size=len(todo))
        final = snaps.summary(interrupted)
    if STRATEGIES[opts.strategy].admission == "budget" and tally.ok_peak:
        _remember(opts, template=template, caps=final["thread_caps"], peak=tally.ok_peak,
                  took=dict(tally.slowest()), mean_s=tally.ok_mean_s)
    return snaps.write(final)  # the report after the wall time


def _tally_of(ledger: Ledger, opts: RunOptions) -> Tally:
    """The running aggregates of what finished before (--resume); with --retry-failed,
    what did not end ok runs again and its old line no longer counts."""
    tally = Tally(opts.metric)
    for row in ledger.rows():
        if opts.retry_failed and row["verdict"] != Verdict.OK:
            ledger.forget(row["index"])
        else:
            tally.add(row)
    return tally


def _prepare_policy(policy: RetryPolicy, opts: RunOptions, template: list[str],
                    caps: dict[str, str], tally: Tally) -> None:
    """The need from this command's peak measured before, else a prior that errs large.
    Another command's peak is never evidence about this one: a small one would make a
    grant every child of this command dies in."""
    policy.seed(*_prior_peak(opts, template, caps, tally))
    if policy.need.value is None:
        policy.assume(default_peak(caps), "a default for a thread-capped TF child: "
                      f"{DEFAULT_PEAK_BASE} threads plus its pools")


def _longest_first(todo: list[int], evaluations: grids.Evaluations, opts: RunOptions,
                   template: list[str], caps: dict[str, str]) -> list[int]:
    """Evaluations known (plan cache) to take longer first, so the run's tail is short;
    unknown ones count as the mean."""
    took, mean = plan_cache.durations(template, caps) if opts.plan_cache else ({}, None)
    if not took:
        return todo
    mean = mean if mean is not None else sum(took.values()) / len(took)
    return sorted(todo, key=lambda i: -took.get(evaluations[i].key, mean))


def _prior_peak(opts: RunOptions, template: list[str], caps: dict[str, str],
                tally: Tally) -> tuple[int | None, str]:
    """A peak known before this run: finished evaluations (resume), a plan in --out, or
    the plan cache (unless --no-plan-cache); and where it comes from."""
    if tally.ok_peak:
        return tally.ok_peak, "this --out"
    if peak := plans.load_measurement(Path(opts.out), template, caps):
        return peak, "this --out"
    return (plan_cache.load(template, caps) if opts.plan_cache else None), "the plan cache"


def _remember(opts: RunOptions, *, template: list[str], caps: dict[str, str], peak: int,
              took: dict[str, float], mean_s: float | None) -> None:
    """Keep this command's measured peak in OUT and, unless --no-plan-cache, in the cache."""
    plans.save_measurement(Path(opts.out), template, caps, peak)
    if opts.plan_cache:
        plan_cache.save(template, caps, peak, took, mean_s)


def plan(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> plans.Plan:
    """Measure one child (the first evaluation, launched the runner's way) and plan."""
    template, evaluations, _ = prepare(template, grid, opts)
    caps = thread_caps(cpus(), opts.jobs or cpus())
    probe_dir = launch.prepare_log_dir(Path(opts.out) / "plan-probe")
    probe = Launch(grids.render(template, evaluations[0]), "phase2", LaunchFiles(probe_dir),
                   caps)
    with LaunchGroup(Condition(name="phase2-plan"), opts.timeout_s,
                     opts.stall_timeout_s) as group:
        [outcome] = group.run([probe])
    if outcome.verdict.ok:
        _remember(opts, template=template, caps=caps, peak=outcome.peak_threads,
                  took={evaluations[0].key: outcome.duration_s}, mean_s=outcome.duration_s)
    result = plans.make(opts.jobs, opts.tasks_budget, outcome.peak_threads or None)
    result.reasoning.insert(0, f"probe: {evaluations[0].key} {evaluations[0].params} -> "
                               f"{outcome.verdict}, peak {outcome.peak_threads} threads "
                               f"(logs: {outcome.log_dir})")
    return result


__all__ = ["DEFAULT_METRIC", "RunOptions", "plan", "prepare", "run"]
