"""The Phase 2 runner: a grid of training evaluations, run reliably and fast.

run() = check inputs -> open the executor -> open the ledger -> schedule what is
not finished -> results.json. The runner talks to executors only through the
contract (executor.py); plan() = one probe launch -> the budget, per-child need
and concurrency the runner would use, with the reasoning.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.errors import InputError
from harness.launch import spec as launch
from harness.launch.condition import Condition
from harness.launch.group import Launch, LaunchGroup
from harness.phase2 import executor as executors
from harness.phase2 import grid as grids
from harness.phase2 import plan_cache, run_report
from harness.phase2 import planning as plans
from harness.phase2.executor import Attempt, Executor
from harness.phase2.ledger import Ledger
from harness.phase2.options import DEFAULT_METRIC, RunOptions
from harness.phase2.policy import RetryPolicy
from harness.phase2.progress import Reporter
from harness.phase2.results import record, results
from harness.phase2.schedule import schedule
from harness.phase2.strategy import STRATEGIES
from harness.phase2.task import Task
from harness.supervise.files import LaunchFiles
from harness.verdict.verdicts import Verdict


def prepare(template: list[str] | None, grid: list[dict] | None, opts: RunOptions
            ) -> tuple[list[str], list[grids.Evaluation], type[Executor]]:
    """Validate everything a run needs before anything launches (InputError)."""
    if opts.strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {opts.strategy!r}: use "
                              f"{', '.join(STRATEGIES)}")
    template = template or grids.default_template()
    grid = grids.validate(grid if grid is not None else grids.default_grid())
    grids.check(template, grid)
    evaluations = grids.evaluations(grid, opts.max_evals)
    launch.check_command(grids.render(template, evaluations[0]))
    kind = executors.load(opts.executor)
    kind.check(opts)
    Condition(parent_tf=opts.parent_tf, env=opts.env, unset=opts.unset)  # validates
    return template, evaluations, kind


def run(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> dict:
    template, evaluations, kind = prepare(template, grid, opts)
    policy = RetryPolicy(retries=STRATEGIES[opts.strategy].retries)
    with kind.open(opts, template, policy) as executor:  # refusals come before OUT exists
        identity = {"template": template, "grid": [e.params for e in evaluations],
                    "strategy": opts.strategy}
        ledger = Ledger.open(Path(opts.out), identity, opts.resume)
        done = {k: r for k, r in ledger.finished.items()
                if not (opts.retry_failed and r["verdict"] != Verdict.OK)}
        todo = [Task(e, grids.render(template, e)) for e in evaluations if e.key not in done]
        if STRATEGIES[opts.strategy].admission == "budget":
            _prepare_policy(policy, opts, template, executor.caps, done)
            todo = _longest_first(todo, opts, template, executor.caps)
        t0, started_at = time.monotonic(), time.time()
        refresher = run_report.Refresher(Path(opts.out))

        def snapshot(interrupted: str | None = None) -> dict:
            facts = {**executor.facts(), "per_child_need": policy.need.value,
                     "decisions": policy.decisions, "interrupted": interrupted,
                     "started_at": started_at}
            return results(evaluations, done, strategy=opts.strategy, metric=opts.metric,
                           wall_s=time.monotonic() - t0, facts=facts)

        facts = executor.facts()
        with Reporter(len(evaluations), len(evaluations) - len(todo), live=opts.live,
                      cpus=facts.get("cpus"), jobs=facts.get("jobs")) as report:

            def finish(attempt: Attempt) -> None:
                row = record(attempt.task, attempt.outcome, opts.metric, attempt.node)
                ledger.append(row)
                done[row["key"]] = row
                report.finished(row["key"], row["verdict"], row["duration_s"], row["score"],
                                row["cpu_s"])
                now = snapshot()
                ledger.write_results(now)
                refresher.maybe(now, policy.decided_at)

            def attempted(attempt: Attempt) -> None:
                report.attempt(attempt.task.evaluation.key, attempt.task.attempts,
                               attempt.outcome.verdict)

            interrupted = schedule(executor, policy, todo, finish, attempted, opts.deadline_s)
        final = snapshot(interrupted)
    peaks = _ok_peaks(done)
    if STRATEGIES[opts.strategy].admission == "budget" and peaks:
        took = {r["key"]: r["duration_s"] for r in done.values() if r["verdict"] == Verdict.OK}
        _remember(opts, template, final["summary"]["thread_caps"], max(peaks), took)
    ledger.write_results(final)
    run_report.write_or_say(Path(opts.out), final, policy.decided_at)  # after the wall time
    return final


def _ok_peaks(done: dict[str, dict]) -> list[int]:
    return [r["peak_threads"] for r in done.values() if r["verdict"] == Verdict.OK]


def _prepare_policy(policy: RetryPolicy, opts: RunOptions, template: list[str],
                    caps: dict[str, str], done: dict[str, dict]) -> None:
    """The need from this command's peak measured before, else a prior that errs large.
    Another command's peak is never evidence about this one: a small one would make a
    grant every child of this command dies in."""
    policy.seed(*_prior_peak(opts, template, caps, done))
    if policy.need.value is None:
        policy.assume(plans.default_peak(caps), "a default for a thread-capped TF child: "
                      f"{plans.DEFAULT_PEAK_BASE} threads plus its pools")


def _longest_first(todo: list[Task], opts: RunOptions, template: list[str],
                   caps: dict[str, str]) -> list[Task]:
    """Evaluations known (plan cache) to take longer first, so the run's tail is short;
    unknown ones count as the mean of the known."""
    took = plan_cache.durations(template, caps) if opts.plan_cache else {}
    if not took:
        return todo
    mean = sum(took.values()) / len(took)
    return sorted(todo, key=lambda t: -took.get(t.evaluation.key, mean))


def _prior_peak(opts: RunOptions, template: list[str], caps: dict[str, str],
                done: dict[str, dict]) -> tuple[int | None, str]:
    """A peak known before this run: finished evaluations (resume), a plan in --out, or
    the plan cache (unless --no-plan-cache); and where it comes from."""
    if peaks := _ok_peaks(done):
        return max(peaks), "this --out"
    if peak := plans.load_measurement(Path(opts.out), template, caps):
        return peak, "this --out"
    return (plan_cache.load(template, caps) if opts.plan_cache else None), "the plan cache"


def _remember(opts: RunOptions, template: list[str], caps: dict[str, str], peak: int,
              took: dict[str, float] | None = None) -> None:
    plans.save_measurement(Path(opts.out), template, caps, peak)
    if opts.plan_cache:
        plan_cache.save(template, caps, peak, took)


def plan(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> plans.Plan:
    """Measure one child (the first evaluation, launched the runner's way) and plan."""
    template, evaluations, _ = prepare(template, grid, opts)
    caps = plans.thread_caps(plans.cpus(), opts.jobs or plans.cpus())
    probe_dir = launch.prepare_log_dir(Path(opts.out) / "plan-probe")
    probe = Launch(grids.render(template, evaluations[0]), "phase2", LaunchFiles(probe_dir),
                   caps)
    with LaunchGroup(Condition(name="phase2-plan"), opts.timeout_s,
                     opts.stall_timeout_s) as group:
        [outcome] = group.run([probe])
    if outcome.verdict.ok:
        _remember(opts, template, caps, outcome.peak_threads)
    result = plans.make(opts.jobs, opts.tasks_budget, outcome.peak_threads or None)
    result.reasoning.insert(0, f"probe: {evaluations[0].key} {evaluations[0].params} -> "
                               f"{outcome.verdict}, peak {outcome.peak_threads} threads "
                               f"(logs: {outcome.log_dir})")
    return result


__all__ = ["DEFAULT_METRIC", "RunOptions", "plan", "prepare", "run"]
