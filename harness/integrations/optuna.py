"""Optuna drives the Phase 2 runner (pip install 'phase2-harness[optuna]').

`optimize(study, pool, params_of, n_trials)` asks the study for a trial only when the Pool
has room (one ahead: a freed place never waits for the study to suggest), submits
`params_of(trial)`, relays each report the child makes to `trial.report(value, step)` and
stops the evaluation when `trial.should_prune()`, and tells the study COMPLETE (with the
evaluation's score), PRUNED or FAIL. A trial whose child ran out of threads is the
runner's to retry, never told as FAIL: the study sees only the final attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait

from harness.errors import InputError
from harness.phase2.pool import Pool
from harness.phase2.record.evaluated import Evaluated
from harness.verdict.verdicts import Verdict

try:
    import optuna
except ImportError:  # pragma: no cover - the extra is not installed
    raise InputError("the Optuna integration needs Optuna, an optional extra: "
                     "pip install 'phase2-harness[optuna]'") from None

WAIT_S = 0.5  # between looks at the pool while trials run
AHEAD = 1  # trials waiting in the pool's queue, so a freed place never waits on the study


def _relay(trial: optuna.trial.Trial, metric: str) -> Callable[[int, dict], bool]:
    """A Pool on_report that reports the metric to the trial and asks its pruner."""
    def on_report(step: int, metrics: dict) -> bool:
        if metric not in metrics:
            return False
        trial.report(float(metrics[metric]), step)
        return trial.should_prune()
    return on_report


def _waiting(running: dict[Future, optuna.trial.Trial]) -> int:
    """Trials submitted that have not started: a study is asked for more only while
    fewer wait than the pool has places free, plus AHEAD (the sampler then learns from
    every trial that ended before it suggests the next)."""
    return sum(1 for future in running if not future.running() and not future.done())


def _tell(study: optuna.Study, trial: optuna.trial.Trial, ev: Evaluated) -> None:
    if ev.verdict == Verdict.PRUNED:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif ev.verdict == Verdict.OK and ev.score is not None:
        study.tell(trial, ev.score)
    else:
        trial.set_user_attr("verdict", str(ev.verdict))
        trial.set_user_attr("log_dir", ev.log_dir)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def optimize(study: optuna.Study, pool: Pool, params_of: Callable[[optuna.trial.Trial], dict],
             n_trials: int, metric: str | None = None) -> list[Evaluated]:
    """Run n_trials trials of the study through the pool; the evaluations, in the order
    they finished. metric: the reported key relayed to the pruner (default: the pool's
    --metric)."""
    metric = metric or pool.opts.metric
    running: dict[Future, optuna.trial.Trial] = {}
    done: list[Evaluated] = []
    asked = 0
    while asked < n_trials or running:
        while asked < n_trials and _waiting(running) < pool.free_slots() + AHEAD:
            trial = study.ask()
            asked += 1
            future = pool.submit(params_of(trial), on_report=_relay(trial, metric))
            running[future] = trial
        finished, _ = wait(list(running), timeout=WAIT_S, return_when=FIRST_COMPLETED)
        for future in finished:
            trial = running.pop(future)
            ev = future.result()
            _tell(study, trial, ev)
            done.append(ev)
    return done
