"""What a run checks and learns before its first evaluation: its inputs (before anything
launches), what finished before (--resume), this command's need from a peak measured
earlier (never another command's), and, at its end, the peak it measured for the next."""

from __future__ import annotations

from pathlib import Path

from harness.launch import spec as launch
from harness.phase2 import executors
from harness.phase2 import grid as grids
from harness.phase2.executors.base import Executor
from harness.phase2.need import cache as plan_cache
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import DEFAULT_PEAK_BASE, Recipe, default_peak
from harness.phase2.need.estimate import Need
from harness.phase2.options import RunOptions
from harness.phase2.record.ledger import Ledger
from harness.phase2.record.summary import Tally
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.strategy import strategy_of
from harness.verdict.verdicts import Verdict


def prepare(template: list[str] | None, grid: list[dict] | None, opts: RunOptions,
            kind: type[Executor] | None = None, *, search: bool = False
            ) -> tuple[list[str], grids.Evaluations, type[Executor]]:
    """Validate everything a run needs before anything launches (InputError). A search
    has no grid yet: its template is checked as the submissions come."""
    strategy_of(opts.strategy)
    template = template or grids.default_template()
    grid = [] if search else grids.validate(grid if grid is not None
                                            else grids.default_grid())
    if grid:
        grids.check(template, grid)
    evaluations = grids.evaluations(grid, None if search else opts.max_evals)
    if grid:
        launch.check_command(grids.render(template, evaluations[0]))
    kind = kind or executors.load(opts.executor)
    kind.check(opts)
    opts.condition("phase2")  # validates the environment and parent state
    return template, evaluations, kind


def tally_of(ledger: Ledger, opts: RunOptions) -> Tally:
    """The running aggregates of what finished before (--resume); with --retry-failed,
    what did not end ok runs again and its old line no longer counts."""
    tally = Tally(opts.metric)
    for row in ledger.rows():
        if opts.retry_failed and row["verdict"] != Verdict.OK:
            ledger.forget(row["index"])
        else:
            tally.add(row)
    return tally


def prepare_need(need: Need, log: DecisionLog, opts: RunOptions, recipe: Recipe,
                 tally: Tally) -> None:
    """The need from this command's peak measured before, else a prior that errs large.
    Another command's peak is never evidence about this one: a small one would make a
    grant every child of this command dies in."""
    log.note(need.seed(*prior_peak(opts, recipe, tally)))
    if need.value is None:
        log.note(need.assume(default_peak(recipe.caps), "a default for a thread-capped TF "
                             f"child: {DEFAULT_PEAK_BASE} threads plus its pools"))


def prior_peak(opts: RunOptions, recipe: Recipe, tally: Tally) -> tuple[int | None, str]:
    """A peak known before this run: finished evaluations (resume), a plan in --out, or
    the plan cache (unless --no-plan-cache); and where it comes from."""
    if tally.ok_peak:
        return tally.ok_peak, "this --out"
    if peak := plans.load_measurement(Path(opts.out), recipe):
        return peak, "this --out"
    return (plan_cache.load(recipe) if opts.plan_cache else None), "the plan cache"


def remember(opts: RunOptions, recipe: Recipe, *, peak: int, took: dict[str, float],
             mean_s: float | None) -> None:
    """Keep this command's measured peak in OUT and, unless --no-plan-cache, in the cache."""
    plans.save_measurement(Path(opts.out), recipe, peak)
    if opts.plan_cache:
        plan_cache.save(recipe, peak, took, mean_s)
