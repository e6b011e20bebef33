"""An Optuna study drives the Pool (harness.integrations.optuna), pruning from the
child's live reports: every trial ends COMPLETE or PRUNED, none FAIL."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna

from harness.integrations.optuna import optimize
from harness.phase2 import Pool, RunOptions
from harness.verdict.verdicts import Verdict

FAKE = str(Path(__file__).resolve().parent.parent / "fakes" / "child.py")
TEMPLATE = [sys.executable, FAKE, "report", "{arg}"]


def test_a_study_of_eight_trials_with_a_median_pruner(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                   n_warmup_steps=1))

    def params_of(trial: optuna.trial.Trial) -> dict:
        return {"arg": f"{trial.suggest_float('scale', 0.5, 20.0):.3f}:6"}

    opts = RunOptions(tasks_budget=60, jobs=2, out=tmp_path / "out", metric="loss",
                      live=False)
    with Pool(TEMPLATE, opts) as pool:
        evaluations = optimize(study, pool, params_of, n_trials=8)
    states = [t.state for t in study.trials]
    assert len(states) == 8 and set(states) <= {optuna.trial.TrialState.COMPLETE,
                                               optuna.trial.TrialState.PRUNED}
    assert len(evaluations) == 8
    assert {ev.verdict for ev in evaluations} <= {Verdict.OK, Verdict.PRUNED}
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert completed and all(t.intermediate_values for t in completed)


def test_the_study_is_asked_only_as_places_free_up(tmp_path):
    """One place and one trial ahead: never more than two trials asked and not yet told,
    so the sampler suggests each trial knowing every one that ended before it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    open_trials: list[int] = []

    def params_of(trial: optuna.trial.Trial) -> dict:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        open_trials.append(states.count(optuna.trial.TrialState.RUNNING))
        return {"arg": f"{trial.suggest_float('scale', 1.0, 2.0):.3f}:2"}

    opts = RunOptions(tasks_budget=60, jobs=1, out=tmp_path / "out", metric="loss",
                      live=False)
    with Pool(TEMPLATE, opts) as pool:
        optimize(study, pool, params_of, n_trials=5)
    assert len(open_trials) == 5 and max(open_trials) <= 2, open_trials
