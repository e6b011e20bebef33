"""The runner keeps the machine busy from the first second: children start under a prior
before one is measured, each capped so that none can take another's share; the queue
runs known-long evaluations first; every evaluation says where its time went."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.host import nvml
from harness.phase2 import RunOptions, grid, run
from harness.phase2.executors.gpu import auto_jobs
from harness.phase2.need import cache as plan_cache
from harness.phase2.need.caps import Recipe, cpus, thread_caps
from harness.phase2.schedule import admission
from tests.unit.conftest import FAKE

pytestmark = pytest.mark.xdist_group("cgroups")
GRID = [{"n": 1}, {"n": 2}]


def _template(mode: str, arg: str) -> list[str]:
    return [sys.executable, str(FAKE), mode, arg, "{n}"]


def _run(tmp_path: Path, template: list[str], grid_: list[dict] = GRID, **kw) -> dict:
    opts = {"out": tmp_path / "out", "jobs": 2, "tasks_budget": 100, "live": False, **kw}
    return run(template, grid_, RunOptions(**opts))


def test_children_start_together_under_the_default_prior(tmp_path):
    results = _run(tmp_path, _template("hold-threads", "3"), plan_cache=False)
    summary = results["summary"]
    assert summary["ok"] == 2 and summary["max_running"] == 2, summary["decisions"]
    decisions = "\n".join(summary["decisions"])
    assert "a default for a thread-capped TF child" in decisions
    assert "capped at" in decisions  # the first child's share, before the second started
    starts = sorted(e["started_at"] for e in results["evaluations"])
    assert starts[1] < min(e["ended_at"] for e in results["evaluations"])


def test_a_child_that_outgrows_a_guessed_grant_is_retried_at_once_and_not_charged(tmp_path):
    # The plan cache knows this command at a peak of 8 (stale: it now holds 20 threads at
    # once): the need is need_from_peak(8) = 11, a guess until a child of this run
    # confirms it. Children die within their guessed grants; each is the runner's mistake.
    # Three places: the second child's is not the last, so it gets the guess alone.
    template = _template("hold-threads", "20")
    plan_cache.save(Recipe(template, thread_caps(cpus(), 3)), 8)
    results = _run(tmp_path, template, [{"n": 1}, {"n": 2}, {"n": 3}], jobs=3)
    summary = results["summary"]
    assert summary["ok"] == 3, summary
    decisions = "\n".join(summary["decisions"])
    assert "grant of 11 tasks (a peak of 8 measured earlier in the plan cache)" in decisions
    assert "not an attempt; retry at once where nothing is guessed for it" in decisions
    ledger = [json.loads(line) for line in (tmp_path / "out" / "ledger.jsonl").open()]
    for row in ledger:
        assert row["attempt_verdicts"][-1] == "ok"
        assert len(row["guesses"]) <= 1  # never more than one guess-death
        if row["guesses"]:
            guess = row["guesses"][0]
            assert guess["grant"] == 11 and guess["shown"] > 11, guess
            assert "plan cache" in guess["guess"]
    died = [r for r in ledger if r["guesses"]]
    assert died, decisions
    first_try = json.loads((Path(died[0]["log_dir"]).parent / "attempt-1" /
                            "outcome.json").read_text())
    assert any("its own grant of 11 tasks" in e for e in first_try["evidence"])
    assert first_try["budget"]["refused_this_launch"] > 0


def test_the_last_place_beside_a_guess_shares_what_the_budget_leaves():
    """A guessed need of 17 (the first child's threads at work_started) on a budget of 60
    with two places: the newcomer and the uncapped first child split the 26 tasks that
    two asks leave over (no third child could use them); a confirmed need is granted as
    it is."""
    first = admission.Child(grant=None, threads_now=11, peak=11)

    def scene(confirmed: bool, most: int = 2) -> admission.Scene:
        return admission.Scene(running=[first], most=most, exclusive=False,
                               after_guess=False, ask=17, need_known=True,
                               need_confirmed=confirmed, free=49, total=60, can_grant=True)

    guessed = admission.decide(scene(confirmed=False))
    assert isinstance(guessed, admission.Admit)
    assert (guessed.grant, guessed.cap) == (30, 30) and guessed.grant + guessed.cap <= 60
    confirmed = admission.decide(scene(confirmed=True))
    assert isinstance(confirmed, admission.Admit) and (confirmed.grant, confirmed.cap) == (17, 43)
    not_last = admission.decide(scene(confirmed=False, most=3))
    assert isinstance(not_last, admission.Admit) and not_last.grant == 17


def test_time_breakdown_and_floor(tmp_path):
    results = _run(tmp_path, _template("burn", "0.6"))
    summary = results["summary"]
    for row in results["evaluations"]:
        assert row["cpu_s"] >= 0.6  # the whole CPU time, read before the child was reaped
        timing = row["timing"]
        assert set(timing) == {"queued_s", "to_work_s", "work_s", "reap_s"}
        assert all(v is not None and v >= 0 for v in timing.values()), timing
        assert timing["work_s"] >= 0.5  # it burned between work_started and completed
    cpu = sum(r["cpu_s"] for r in results["evaluations"])
    assert summary["cpus"] == cpus()
    assert summary["floor_s"] == pytest.approx(cpu / cpus(), abs=0.01)
    assert summary["ratio_to_floor"] == pytest.approx(summary["wall_s"] / summary["floor_s"],
                                                      rel=0.01)


def test_known_long_evaluations_go_first(tmp_path):
    template = _template("ok", "x")
    grid_ = [{"n": 1}, {"n": 2}, {"n": 3}]
    keys = [e.key for e in grid.evaluations(grid_, None)]
    caps = thread_caps(cpus(), 1)
    plan_cache.save(Recipe(template, caps), 4, {keys[0]: 1.0, keys[2]: 9.0})
    results = _run(tmp_path, template, grid_, jobs=1)
    order = [e["key"] for e in sorted(results["evaluations"], key=lambda e: e["started_at"])]
    assert order == [keys[2], keys[1], keys[0]]  # the unknown one counts as the mean (5 s)
    saved, _ = plan_cache.durations(Recipe(template, caps))
    assert set(saved) == set(keys)  # this run's durations were kept for the next


def _gpu(index: int, free_gib: float) -> nvml.Gpu:
    return nvml.Gpu(index, "H200", f"GPU-{index}", int(141 * nvml.GIB),
                    int(free_gib * nvml.GIB), "DEFAULT")


def test_jobs_auto_from_what_the_host_has():
    assert auto_jobs([], 8.0)[0] == cpus()
    assert auto_jobs([_gpu(0, 100), _gpu(1, 100)], 0.0)[0] == 2
    jobs, why = auto_jobs([_gpu(0, 100), _gpu(1, 20)], 30.0)
    assert jobs == 3 + 1 and "2 visible GPUs" in why  # a GPU short of memory still takes one
