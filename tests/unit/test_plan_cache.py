"""Measure once, reuse everywhere: the per-child peak of a run seeds the next one with
another --out, unless --no-plan-cache; another command's peak is never this one's prior."""

from __future__ import annotations

import re

from harness.phase2 import RunOptions, run
from harness.phase2.need import cache as plan_cache
from harness.phase2.need.caps import Recipe

CAPS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
# No events and no output until the end: the need is learnt only when one completes.
TEMPLATE = ["sh", "-c", "sleep 1.5; echo evaluation {n}"]
GRID = [{"n": 1}, {"n": 2}]


def test_round_trip_and_key():
    assert plan_cache.load(Recipe(TEMPLATE, CAPS)) is None
    plan_cache.save(Recipe(TEMPLATE, CAPS), 21)
    assert plan_cache.load(Recipe(TEMPLATE, CAPS)) == 21
    assert plan_cache.load(Recipe(TEMPLATE, {**CAPS, "OMP_NUM_THREADS": "2"})) is None
    assert plan_cache.load(Recipe([*TEMPLATE, "--more"], CAPS)) is None


def _run(tmp_path, name: str, **kw) -> dict:
    return run(TEMPLATE, GRID, RunOptions(out=tmp_path / name, jobs=2, live=False, **kw))


def test_a_second_run_starts_from_the_cached_peak(tmp_path):
    cold = _run(tmp_path, "cold")["summary"]
    # Nothing measured yet: both start under a prior, each capped by a grant of its own.
    assert cold["ok"] == 2 and cold["max_running"] == 2
    assert any("children start under grants" in d for d in cold["decisions"])
    warm = _run(tmp_path, "warm")["summary"]
    assert warm["ok"] == 2 and warm["max_running"] == 2  # both at once: nothing to measure
    assert any("measured earlier in the plan cache" in d for d in warm["decisions"]), \
        warm["decisions"]
    # Side by side from the first second, each under a grant of the cached need: a guess
    # until a child of this run confirms it.
    # (The last place beside a guess also takes up to the ask again from the budget's rest.)
    need = warm["per_child_need"]
    assert any(re.search(r"grant of (\d+) tasks \(a peak", d) and "earlier in the plan cache"
               in d and need <= int(re.search(r"grant of (\d+)", d)[1]) <= 2 * need
               for d in warm["decisions"]), warm["decisions"]
    ignored = _run(tmp_path, "ignored", plan_cache=False)["summary"]
    assert not any("plan cache" in d for d in ignored["decisions"])


def test_another_commands_peak_is_not_this_ones_prior(tmp_path):
    plan_cache.save(Recipe(["python", "-c", "print(1)"], CAPS), 1)  # a tiny command ran before
    summary = _run(tmp_path, "after-a-tiny-one")["summary"]
    assert summary["ok"] == 2
    decisions = "\n".join(summary["decisions"])
    assert "a default for a thread-capped TF child" in decisions, decisions
    assert "grants of 2 tasks" not in decisions
