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
from harness.phase2 import grid as grids
from harness.phase2.executors.base import Executor
from harness.phase2.layout import Layout
from harness.phase2.need import cache as plan_cache
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import Recipe, cpus, thread_caps
from harness.phase2.options import DEFAULT_METRIC, RunOptions
from harness.phase2.pool import OnReport, Pool
from harness.phase2.prepare import prepare, remember
from harness.phase2.schedule.loop import Queue
from harness.phase2.view.progress import Reporter
from harness.supervise.files import LaunchFiles


def _render(out: Path, results: dict, shown: list[tuple[float, str]]) -> None:
    from harness.phase2.view import html  # matplotlib: not for a run that is refused

    html.write_or_say(out, results, shown)


def run(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
        kind: type[Executor] | None = None, on_report: OnReport | None = None) -> dict:
    """The grid's evaluations through the executor opts.executor names (or `kind`, an
    Executor class of the caller's own), to results.json; the results, whose evaluations
    are read from the ledger as they are iterated. A client of the Pool: the whole grid,
    in the caller's thread (Ctrl-C stops it), longest known evaluations first; on_report,
    where given, may stop any evaluation from its reports (a pruning rule)."""
    pool = Pool(template, opts, grid=grid if grid is not None else grids.default_grid(),
                kind=kind, render=_render)
    try:
        evaluations = pool.evaluations
        todo = [i for i in range(len(evaluations)) if not pool.ledger.has(i)]
        if pool.strategy.measures:
            todo = _longest_first(todo, evaluations, opts, pool.recipe)
        facts = pool.executor.facts()
        with Reporter(len(evaluations), len(evaluations) - len(todo), live=opts.live,
                      cpus=facts.cpus, jobs=facts.jobs) as report:
            pool.report = report
            tasks = (pool.task_of(e, on_report) for e in map(evaluations.__getitem__, todo))
            pool.drive(Queue(tasks, len(todo)))
    except BaseException:
        pool.close()
        raise
    return pool.finish()  # the report after the wall time


def _longest_first(todo: list[int], evaluations: grids.Evaluations, opts: RunOptions,
                   recipe: Recipe) -> list[int]:
    """Evaluations known (plan cache) to take longer first, so the run's tail is short;
    unknown ones count as the mean."""
    took, mean = plan_cache.durations(recipe) if opts.plan_cache else ({}, None)
    if not took:
        return todo
    mean = mean if mean is not None else sum(took.values()) / len(took)
    return sorted(todo, key=lambda i: -took.get(evaluations[i].key, mean))


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
        remember(opts, recipe, peak=outcome.peak_threads,
                  took={evaluations[0].key: outcome.duration_s}, mean_s=outcome.duration_s)
    result = plans.make(opts.jobs, opts.tasks_budget, outcome.peak_threads or None)
    result.reasoning.insert(0, f"probe: {evaluations[0].key} {evaluations[0].params} -> "
                               f"{outcome.verdict}, peak {outcome.peak_threads} threads "
                               f"(logs: {outcome.log_dir})")
    return result


__all__ = ["DEFAULT_METRIC", "RunOptions", "plan", "prepare", "run"]
