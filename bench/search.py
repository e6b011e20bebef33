"""The same 20-trial Optuna study on the reference workload, three ways, under one task
budget that fits two children (a pids cgroup of 60 tasks):

  (a) study.optimize(n_jobs=4), each trial shelling out with subprocess.run, as users do;
  (b) through the Pool (harness.integrations.optuna.optimize);
  (c) through the Pool with a MedianPruner on the children's live reports.

(b) and (c) start cold: this command's thread peak is not known yet, so the Pool measures
its first child before a second starts beside it. Then (b) once more, warm: the plan
cache now knows the peak, as it does for every later search of this command here. For
scale, the same study with two trials at a time and no budget at all: what any scheduler
with two places reaches on these children.

Printed: trials lost (FAIL) or pruned, the wall time, and the ratio to the children's
CPU floor (their CPU seconds over the CPUs). Needs the optuna extra.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from bench.common import save
from harness.host import cgroup
from harness.integrations.optuna import optimize
from harness.phase2 import Pool, RunOptions
from harness.phase2 import grid as grids
from harness.phase2.need.caps import cpus

TRIALS = 20
BUDGET = 60  # two capped reference children (~24 each), not three
TEMPLATE = grids.default_template()


def _params(trial: optuna.trial.Trial) -> dict:
    return {name: trial.suggest_int(name, center - 1, center + 1)
            for name, center in grids.FIELD_CENTER.items()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def field_way(tmp: Path, n_jobs: int = 4, budget: int | None = BUDGET) -> dict:
    """(a): trials as threads of one process, each a subprocess in one shared budget
    (budget None: no budget, the two-place reference)."""
    group = cgroup.create(budget) if budget else None
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))

    def objective(trial: optuna.trial.Trial) -> float:
        argv = [part.format(**_params(trial)) for part in TEMPLATE]
        metrics = tmp / f"field-{n_jobs}-{trial.number}.json"
        limits = ([sys.executable, "-m", "harness.host.limits", "--cgroup", str(group.path),
                   "--"] if group else [])
        done = subprocess.run([*limits, *argv], capture_output=True, check=False,
                              env={**os.environ, "HARNESS_METRICS_OUT": str(metrics)})
        if done.returncode != 0:
            raise RuntimeError(f"exit {done.returncode}")
        return float(json.loads(metrics.read_text())["cv_score_mean"])

    cpu0, t0 = _children_cpu(), time.monotonic()
    try:
        study.optimize(objective, n_trials=TRIALS, n_jobs=n_jobs, catch=(RuntimeError,))
    finally:
        if group:
            group.kill_all()
            group.remove()
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    states = [t.state.name for t in study.trials]
    return {"wall_s": wall, "floor_s": cpu / cpus(), "failed": states.count("FAIL"),
            "pruned": 0}


def pool_way(tmp: Path, name: str, pruner: optuna.pruners.BasePruner | None,
             cache: str) -> dict:
    """(b) and (c): the same study through the Pool, under the same budget; `cache`
    names this way's plan cache (a new one: cold; (b)'s again: warm)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0),
                                pruner=pruner or optuna.pruners.NopPruner())
    os.environ["HARNESS_PLAN_CACHE"] = str(tmp / cache)
    opts = RunOptions(tasks_budget=BUDGET, out=tmp / name, live=False)
    t0 = time.monotonic()
    with Pool(TEMPLATE, opts) as pool:
        optimize(study, pool, _params, TRIALS)
    wall = time.monotonic() - t0
    summary = json.loads((tmp / name / "results.json").read_text())["summary"]
    states = [t.state.name for t in study.trials]
    return {"wall_s": wall, "floor_s": summary.get("floor_s") or 0.0,
            "failed": states.count("FAIL"), "pruned": states.count("PRUNED")}


def run() -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    median = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    cache_before = os.environ.get("HARNESS_PLAN_CACHE")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        try:
            ways = {"a_field_n_jobs_4": field_way(Path(tmp)),
                    "b_pool": pool_way(Path(tmp), "pool", None, "cache-b"),
                    "b_pool_warm": pool_way(Path(tmp), "pool-warm", None, "cache-b"),
                    "c_pool_pruning": pool_way(Path(tmp), "pruned", median, "cache-c"),
                    "two_places_no_budget": field_way(Path(tmp), n_jobs=2, budget=None)}
        finally:
            os.environ.pop("HARNESS_PLAN_CACHE", None)
            if cache_before is not None:
                os.environ["HARNESS_PLAN_CACHE"] = cache_before
    parts = [f"{name}: {w['failed']} lost, {w['pruned']} pruned, {w['wall_s']:.0f} s, "
             f"{w['wall_s'] / w['floor_s']:.2f}x floor" if w["floor_s"] else
             f"{name}: {w['failed']} lost" for name, w in ways.items()]
    save("search", f"search ({TRIALS} trials, budget {BUDGET}, {cpus()} CPUs): "
         + "; ".join(parts), {"trials": TRIALS, "budget": BUDGET, **ways})
    return ways


if __name__ == "__main__":
    run()
