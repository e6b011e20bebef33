"""The Phase 2 runner: a grid of training evaluations, run reliably and fast.

run() = check inputs -> open the ledger -> schedule what is not finished ->
results.json. plan() = one probe launch -> the budget, per-child need and
concurrency the runner would use, with the reasoning.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness import headroom, launch, nvml
from harness.command import Command
from harness.condition import Condition
from harness.limits import Limits
from harness.outcome import Outcome
from harness.phase2 import grid as grids
from harness.phase2 import planning as plans
from harness.phase2.ledger import Ledger
from harness.phase2.progress import Reporter
from harness.phase2.schedule import STRATEGIES, TICK_S, GpuGate, Scheduler, Task
from harness.supervise import LaunchFiles

if TYPE_CHECKING:
    from harness.phase2.ray_executor import Driver

DEFAULT_METRIC = "cv_score_mean"
EXECUTORS = ("local", "ray")
HOST = socket.gethostname()


@dataclass
class RunOptions:
    strategy: str = "runner"
    tasks_budget: int | None = None
    jobs: int | None = None  # None: auto
    timeout_s: float = launch.DEFAULT_TIMEOUT_S
    stall_timeout_s: float = launch.DEFAULT_STALL_TIMEOUT_S
    out: Path = Path("phase2-out")
    resume: bool = False
    retry_failed: bool = False
    max_evals: int | None = None
    metric: str = DEFAULT_METRIC
    min_gpu_memory: float | None = None  # None: taken from the template's --min-gpu-memory
    parent_tf: str = "none"  # reproduce a field condition in the launching parents
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    live: bool | None = None  # progress bar; None: when stderr is a terminal
    executor: str = "local"  # "local" | "ray"
    ray_address: str | None = None  # None with executor "ray": start a cluster here
    cpus_per_eval: float = 1.0  # Ray resources each evaluation requests
    gpus_per_eval: float = 0.0


def _min_gpu_memory(template: list[str], explicit: float | None) -> float:
    if explicit is not None:
        return explicit
    if "--min-gpu-memory" in template:
        try:
            return float(template[template.index("--min-gpu-memory") + 1])
        except (IndexError, ValueError):
            return 0.0
    return 0.0


def prepare(template: list[str] | None, grid: list[dict] | None, opts: RunOptions
            ) -> tuple[list[str], list[grids.Evaluation]]:
    """Validate everything a run needs before anything launches (GridError/LaunchInputError)."""
    if opts.strategy not in STRATEGIES:
        raise grids.GridError(f"unknown strategy {opts.strategy!r}: use "
                              f"{', '.join(STRATEGIES)}")
    template = template or grids.default_template()
    grid = grids.validate(grid if grid is not None else grids.default_grid())
    grids.check(template, grid)
    evaluations = grids.evaluations(grid, opts.max_evals)
    launch.check_command(grids.render(template, evaluations[0]))
    _check_executor(opts)
    Condition(parent_tf=opts.parent_tf, env=opts.env, unset=opts.unset)  # validates
    return template, evaluations


def _check_executor(opts: RunOptions) -> None:
    if opts.executor not in EXECUTORS:
        raise launch.LaunchInputError(f"unknown executor {opts.executor!r}: use "
                                      f"{', '.join(EXECUTORS)}")
    if opts.executor == "local":
        if opts.ray_address:
            raise launch.LaunchInputError("--ray-address needs --executor ray")
        return
    from harness.phase2.ray_executor import import_ray

    if opts.strategy != "runner":
        raise launch.LaunchInputError("--executor ray runs the runner strategy, not "
                                      f"{opts.strategy!r}")
    if opts.jobs is not None:
        raise launch.LaunchInputError("--jobs is for the local executor: on Ray, the nodes' "
                                      "resources decide how many run at once")
    if opts.cpus_per_eval <= 0 or opts.gpus_per_eval < 0:
        raise launch.LaunchInputError("--cpus-per-eval must be > 0 and --gpus-per-eval >= 0")
    import_ray()


def check_devices(handle: nvml.Nvml, env: dict[str, str]) -> None:
    """Refuse a run that would silently train on CPU on a GPU host (the report's
    "Solution C": CUDA_VISIBLE_DEVICES='' hides every GPU, without an error)."""
    if handle.available and env.get("CUDA_VISIBLE_DEVICES") == "":
        count = len(handle.gpus())
        raise launch.LaunchInputError(
            f"CUDA_VISIBLE_DEVICES is set but empty: it hides all {count} GPUs of this host, "
            "so every evaluation would train on CPU without an error; unset it or name the "
            "GPUs (e.g. CUDA_VISIBLE_DEVICES=0,1)")


def _parent_env(opts: RunOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in opts.unset}
    env.update(opts.env)
    return env


def _score(metrics: dict | None, metric: str) -> float | None:
    value = (metrics or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def _record(task: Task, outcome: Outcome, metric: str, node: str) -> dict:
    return {
        "key": task.evaluation.key,
        "index": task.evaluation.index,
        "params": task.evaluation.params,
        "verdict": outcome.verdict,
        "attempts": task.attempts,
        "attempt_verdicts": task.verdicts,
        "metrics": outcome.metrics,
        "score": _score(outcome.metrics, metric),
        "duration_s": outcome.duration_s,
        "started_at": task.started_at,
        "ended_at": task.started_at + outcome.duration_s,
        "peak_threads": outcome.peak_threads,
        "devices": outcome.devices,
        "node": node,
        "log_dir": outcome.log_dir,
        "evidence": outcome.evidence[:4],
    }


def results(evaluations: list[grids.Evaluation], finished: dict[str, dict], opts: RunOptions,
            wall_s: float, extra: dict) -> dict:
    rows = [finished[e.key] for e in evaluations if e.key in finished]
    by_verdict: dict[str, int] = {}
    for row in rows:
        by_verdict[row["verdict"]] = by_verdict.get(row["verdict"], 0) + 1
    scored = [r for r in rows if r["verdict"] == "ok" and r.get("score") is not None]
    best = max(scored, key=lambda r: r["score"], default=None)
    return {
        "evaluations": [{k: row[k] for k in ("key", "params", "verdict", "attempts", "metrics",
                                             "duration_s", "log_dir", "started_at",
                                             "ended_at", "peak_threads", "score",
                                             "devices", "node")}
                        for row in rows],
        "summary": {
            "strategy": opts.strategy,
            "total": len(evaluations),
            "finished": len(rows),
            "missing": [e.key for e in evaluations if e.key not in finished],
            "ok": by_verdict.get("ok", 0),
            "by_verdict": by_verdict,
            "attempts_total": sum(r["attempts"] for r in rows),
            "metric": opts.metric,
            "best": best and {"key": best["key"], "params": best["params"],
                              "score": best["score"]},
            "wall_s": round(wall_s, 3),
            **extra,
        },
    }


def run(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> dict:
    template, evaluations = prepare(template, grid, opts)
    with _executor(opts) as cluster:  # None: this host; checked before OUT is touched
        identity = {"template": template, "grid": [e.params for e in evaluations],
                    "strategy": opts.strategy}
        ledger = Ledger.open(Path(opts.out), identity, opts.resume)
        done = {k: r for k, r in ledger.finished.items()
                if not (opts.retry_failed and r["verdict"] != "ok")}
        todo = [Task(e, grids.render(template, e)) for e in evaluations if e.key not in done]
        t0 = time.monotonic()
        with Reporter(len(evaluations), len(evaluations) - len(todo), live=opts.live) as report:

            def finish(task: Task, outcome: Outcome, node: str = HOST) -> None:
                record = _record(task, outcome, opts.metric, node)
                ledger.append(record)
                done[task.evaluation.key] = record
                report.finished(task.evaluation.key, outcome.verdict, outcome.duration_s,
                                record["score"])
                ledger.write_results(results(evaluations, done, opts, time.monotonic() - t0,
                                             {}))

            def attempt(task: Task, outcome: Outcome) -> None:
                report.attempt(task.evaluation.key, task.attempts, outcome.verdict)

            if cluster is None:
                extra = _run_local(template, todo, opts, done, finish, attempt)
            else:
                extra = _run_ray(cluster, template, todo, opts, done, finish, attempt)
    peaks = _ok_peaks(done)
    if STRATEGIES[opts.strategy].admission == "budget" and peaks:
        plans.save_measurement(Path(opts.out), template, extra["thread_caps"], max(peaks))
    final = results(evaluations, done, opts, time.monotonic() - t0, extra)
    ledger.write_results(final)
    return final


def _executor(opts: RunOptions):
    if opts.executor == "ray":
        from harness.phase2 import ray_executor

        return ray_executor.connect(opts.ray_address, opts.tasks_budget, opts.cpus_per_eval,
                                    opts.gpus_per_eval)
    with nvml.Nvml.open() as handle:
        check_devices(handle, _parent_env(opts))
    return contextlib.nullcontext(None)


def _run_local(template: list[str], todo: list[Task], opts: RunOptions,
               done: dict[str, dict], finish, attempt) -> dict:
    """Admission control against this host's live budget, in one launch group."""
    strategy = STRATEGIES[opts.strategy]
    jobs = opts.jobs or (len(todo) if strategy.admission == "all" else plans.cpus())
    condition = Condition(name=f"phase2-{opts.strategy}", limits=Limits(tasks=opts.tasks_budget),
                          parent_tf=opts.parent_tf, env=opts.env, unset=opts.unset)
    with launch.LaunchGroup(condition, opts.timeout_s, opts.stall_timeout_s, TICK_S) as group:
        live_headroom = (group.headroom if opts.tasks_budget is not None
                         else lambda: headroom.tightest().headroom)
        scheduler = Scheduler(
            group, strategy, jobs, live_headroom,
            GpuGate(group.nvml, _min_gpu_memory(template, opts.min_gpu_memory)),
            Path(opts.out) / "evals", finish, attempt)
        if strategy.admission == "budget":
            _start_from_prior(scheduler, _prior_peak(opts, template, scheduler.caps, done))
        scheduler.run(todo)
        budget = group.budget.record()
    return {"executor": "local", "cluster": None, "jobs": jobs,
            "max_running": scheduler.max_running, "per_child_need": scheduler.need.value,
            "thread_caps": scheduler.caps, "budget": budget, "decisions": scheduler.decisions,
            "interrupted": scheduler.interrupted}


def _run_ray(cluster, template: list[str], todo: list[Task], opts: RunOptions,
             done: dict[str, dict], finish, attempt) -> dict:
    """Ray does the admission control; each node runs its evaluations as _run_local would."""
    from harness.phase2.ray_executor import Driver

    caps = plans.thread_caps(max(1, int(opts.cpus_per_eval)), 1)
    driver = Driver(cluster, opts, caps, Path(opts.out) / "evals", finish, attempt)
    _start_from_prior(driver, _prior_peak(opts, template, caps, done))
    driver.run(todo)
    return driver.extras()


def _start_from_prior(executor: Scheduler | Driver, prior: int | None) -> None:
    """Skip measuring the first child when this --out already knows a peak."""
    if prior:
        executor.need.value = plans.need_from_peak(prior)
        executor.decisions.append(f"per-child need {executor.need.value} from a peak of {prior} "
                                  "threads measured earlier in this --out")


def _ok_peaks(done: dict[str, dict]) -> list[int]:
    return [r["peak_threads"] for r in done.values() if r["verdict"] == "ok"]


def _prior_peak(opts: RunOptions, template: list[str], caps: dict[str, str],
                done: dict[str, dict]) -> int | None:
    """A peak this --out already knows: finished evaluations (resume) or a plan."""
    peaks = _ok_peaks(done)
    return max(peaks) if peaks else plans.load_measurement(Path(opts.out), template, caps)


def plan(template: list[str] | None, grid: list[dict] | None, opts: RunOptions) -> plans.Plan:
    """Measure one child (the first evaluation, launched the runner's way) and plan."""
    template, evaluations = prepare(template, grid, opts)
    caps = plans.thread_caps(plans.cpus(), opts.jobs or plans.cpus())
    probe_dir = launch.prepare_log_dir(Path(opts.out) / "plan-probe")
    with launch.LaunchGroup(Condition(name="phase2-plan"), opts.timeout_s,
                            opts.stall_timeout_s) as group:
        pending = group.prepare(grids.render(template, evaluations[0]), "phase2",
                                LaunchFiles(probe_dir), caps)
        watch = group.release([pending])[0]
        group.supervisor.run()
        outcome = group.outcome(watch, condition_name="phase2-plan")
    if outcome.verdict == "ok":
        plans.save_measurement(Path(opts.out), template, caps, outcome.peak_threads)
    result = plans.make(opts.jobs, opts.tasks_budget, outcome.peak_threads or None)
    result.reasoning.insert(0, f"probe: {evaluations[0].key} {evaluations[0].params} -> "
                               f"{outcome.verdict}, peak {outcome.peak_threads} threads "
                               f"(logs: {outcome.log_dir})")
    return result


def run_copies(command: Command, condition: Condition, log_dir: Path, timeout_s: float,
               stall_timeout_s: float) -> list[Outcome]:
    """condition.siblings copies of one command through the runner strategy: what the
    repro matrix's phase2 column runs (same condition, admission control added)."""
    command = launch.effective_command(command, condition)
    launch.check_command(command)
    launch.prepare_log_dir(Path(log_dir))
    outcomes: dict[int, Outcome] = {}

    def finish(task: Task, outcome: Outcome) -> None:
        outcome.sibling = task.evaluation.index
        outcomes[task.evaluation.index] = outcome

    with launch.LaunchGroup(condition, timeout_s, stall_timeout_s) as group:
        live = (group.headroom if condition.limits.tasks is not None
                else lambda: headroom.tightest().headroom)
        scheduler = Scheduler(group, STRATEGIES["runner"], plans.cpus(), live,
                              GpuGate(group.nvml, 0.0), Path(log_dir), finish)
        scheduler.run([Task(grids.Evaluation(i, {"copy": i}), command)
                       for i in range(condition.siblings)])
    return [outcomes[i] for i in sorted(outcomes)]
