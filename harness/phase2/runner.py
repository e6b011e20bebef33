"""The Phase 2 runner: a grid of training evaluations, run reliably and fast.

run() = check inputs -> open the executor -> open the ledger -> schedule what is
not finished -> results.json. The runner talks to executors only through the
contract (executors/base.py); plan() = one probe launch -> the budget, per-child need
and concurrency the runner would use, with the reasoning.

One evaluation's walk: grid/ renders its command; need/ says what a child of this
recipe is granted; schedule/ offers its task to the executor, which admits and starts
it (executors/); its attempts end as Attempts the retry policy settles; the final one
becomes a ledger row (record/); the summary and report are drawn from the ledger (view/).
"""

from __future__ import annotations

from pathlib import Path

from harness.launch import spec as launch
from harness.launch.group import Launch, LaunchGroup
from harness.phase2 import executors
from harness.phase2 import grid as grids
from harness.phase2.executors.base import Attempt, Executor
from harness.phase2.layout import Layout
from harness.phase2.need import cache as plan_cache
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import DEFAULT_PEAK_BASE, Recipe, cpus, default_peak, thread_caps
from harness.phase2.need.estimate import Need
from harness.phase2.options import DEFAULT_METRIC, RunOptions
from harness.phase2.record.ledger import Ledger
from harness.phase2.record.row import record
from harness.phase2.record.snapshots import Snapshots, Sources
from harness.phase2.record.summary import Tally
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.loop import Hooks, Queue, schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task
from harness.phase2.strategy import strategy_of
from harness.phase2.view.progress import Reporter
from harness.supervise.files import LaunchFiles
from harness.verdict.verdicts import Verdict


def prepare(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
            kind: type[Executor] | None = None
            ) -> tuple[list[str], grids.Evaluations, type[Executor]]:
    """Validate everything a run needs before anything launches (InputError)."""
    strategy_of(opts.strategy)
    template = template or grids.default_template()
    grid = grids.validate(grid if grid is not None else grids.default_grid())
    grids.check(template, grid)
    evaluations = grids.evaluations(grid, opts.max_evals)
    launch.check_command(grids.render(template, evaluations[0]))
    kind = kind or executors.load(opts.executor)
    kind.check(opts)
    opts.condition("phase2")  # validates the environment and parent state
    return template, evaluations, kind


def _render(out: Path, results: dict, shown: list[tuple[float, str]]) -> None:
    from harness.phase2.view import html  # matplotlib: not for a run that is refused

    html.write_or_say(out, results, shown)


def run(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
        kind: type[Executor] | None = None) -> dict:
    """The grid's evaluations through the executor opts.executor names (or `kind`, an
    Executor class of the caller's own), to results.json; the results, whose evaluations
    are read from the ledger as they are iterated."""
    template, evaluations, kind = prepare(template, grid, opts, kind)
    strategy, layout = strategy_of(opts.strategy), Layout(Path(opts.out))
    need, log = Need(), DecisionLog()
    policy = RetryPolicy(retries=strategy.retries, log=log)
    ledger: Ledger | None = None
    try:
        with kind.open(opts, template, need, log) as executor:  # refusals come before OUT exists
            identity = {"template": template, "grid": evaluations.params,
                        "strategy": opts.strategy}
            ledger = Ledger.open(layout.out, identity, opts.resume)
            log.stream_to(layout.decisions, keep=opts.resume)
            tally = _tally_of(ledger, opts)
            todo = [i for i in range(len(evaluations)) if not ledger.has(i)]
            recipe = Recipe(template, executor.caps)
            if strategy.measures:
                _prepare_need(need, log, opts, recipe, tally)
                todo = _longest_first(todo, evaluations, opts, recipe)
            snaps = Snapshots(ledger, tally, evaluations, strategy=opts.strategy,
                              sources=Sources(executor, need, log), render=_render)
            facts = executor.facts()
            with Reporter(len(evaluations), len(evaluations) - len(todo), live=opts.live,
                          cpus=facts.cpus, jobs=facts.jobs) as report:

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
                interrupted = schedule(executor, Queue(tasks, len(todo)),
                                       lambda attempt: policy.settle(attempt, need),
                                       Hooks(finished=finish, attempted=attempted), opts.deadline_s)
            final = snaps.summary(interrupted)
        if strategy.measures and tally.ok_peak:
            _remember(opts, Recipe(template, final["thread_caps"]), peak=tally.ok_peak,
                      took=dict(tally.slowest()), mean_s=tally.ok_mean_s)
        return snaps.write(final)  # the report after the wall time
    finally:
        if ledger is not None:
            ledger.close()


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


def _prepare_need(need: Need, log: DecisionLog, opts: RunOptions, recipe: Recipe,
                  tally: Tally) -> None:
    """The need from this command's peak measured before, else a prior that errs large.
    Another command's peak is never evidence about this one: a small one would make a
    grant every child of this command dies in."""
    log.note(need.seed(*_prior_peak(opts, recipe, tally)))
    if need.value is None:
        log.note(need.assume(default_peak(recipe.caps), "a default for a thread-capped TF "
                             f"child: {DEFAULT_PEAK_BASE} threads plus its pools"))


def _longest_first(todo: list[int], evaluations: grids.Evaluations, opts: RunOptions,
                   recipe: Recipe) -> list[int]:
    """Evaluations known (plan cache) to take longer first, so the run's tail is short;
    unknown ones count as the mean."""
    took, mean = plan_cache.durations(recipe) if opts.plan_cache else ({}, None)
    if not took:
        return todo
    mean = mean if mean is not None else sum(took.values()) / len(took)
    return sorted(todo, key=lambda i: -took.get(evaluations[i].key, mean))


def _prior_peak(opts: RunOptions, recipe: Recipe, tally: Tally) -> tuple[int | None, str]:
    """A peak known before this run: finished evaluations (resume), a plan in --out, or
    the plan cache (unless --no-plan-cache); and where it comes from."""
    if tally.ok_peak:
        return tally.ok_peak, "this --out"
    if peak := plans.load_measurement(Path(opts.out), recipe):
        return peak, "this --out"
    return (plan_cache.load(recipe) if opts.plan_cache else None), "the plan cache"


def _remember(opts: RunOptions, recipe: Recipe, *, peak: int, took: dict[str, float],
              mean_s: float | None) -> None:
    """Keep this command's measured peak in OUT and, unless --no-plan-cache, in the cache."""
    plans.save_measurement(Path(opts.out), recipe, peak)
    if opts.plan_cache:
        plan_cache.save(recipe, peak, took, mean_s)


def plan(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> plans.Plan:
    """Measure one child (the first evaluation, launched the runner's way) and plan."""
    template, evaluations, _ = prepare(template, grid, opts)
    recipe = Recipe(template, thread_caps(cpus(), opts.jobs or cpus()))
    probe_dir = launch.prepare_log_dir(Layout(Path(opts.out)).plan_probe)
    probe = Launch(grids.render(template, evaluations[0]), "phase2", LaunchFiles(probe_dir),
                   recipe.caps)
    with LaunchGroup(opts.condition("phase2-plan"), opts.timeout_s, opts.stall_timeout_s,
                     log_cap_bytes=opts.log_cap_bytes) as group:
        [outcome] = group.run([probe])
    if outcome.verdict.ok:
        _remember(opts, recipe, peak=outcome.peak_threads,
                  took={evaluations[0].key: outcome.duration_s}, mean_s=outcome.duration_s)
    result = plans.make(opts.jobs, opts.tasks_budget, outcome.peak_threads or None)
    result.reasoning.insert(0, f"probe: {evaluations[0].key} {evaluations[0].params} -> "
                               f"{outcome.verdict}, peak {outcome.peak_threads} threads "
                               f"(logs: {outcome.log_dir})")
    return result


__all__ = ["DEFAULT_METRIC", "RunOptions", "plan", "prepare", "run"]
