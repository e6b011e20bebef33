"""The Pool: the runner as a concurrent.futures.Executor any search drives, under the
local executor and the Ray executor (a stand-in Ray), with the fake child."""

from __future__ import annotations

import concurrent.futures as cf
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InputError
from harness.host.proctree import marked
from harness.phase2 import Pool, RunOptions
from harness.phase2.executors.ray.cluster import Cluster, Node
from harness.phase2.executors.ray.executor import RayExecutor
from harness.verdict.verdicts import Verdict
from tests.fakes.instant import instant

from .test_executors import FakeRay

FAKE = str(Path(__file__).resolve().parent.parent / "fakes" / "child.py")
TEMPLATE = [sys.executable, FAKE, "{mode}", "{arg}"]


class FakeRayExecutor(RayExecutor):
    """The Ray executor over a stand-in Ray: one node, tasks in threads."""

    @classmethod
    def check(cls, opts) -> None:
        pass

    @classmethod
    @contextmanager
    def open(cls, opts, template, need, log):
        yield cls(Cluster(None, [Node("fake-node", 60, 4.0, 0.0)]), opts, need, log,
                  ray=FakeRay())


KINDS = [pytest.param(None, id="local"), pytest.param(FakeRayExecutor, id="ray")]


def _opts(tmp_path: Path, kind, **more) -> RunOptions:
    settings = {"tasks_budget": 60, "out": tmp_path / "out", "metric": "loss", "live": False,
                "jobs": 2, "stall_timeout_s": 30.0, "timeout_s": 60.0, **more}
    opts = RunOptions(**settings)
    if kind is not None:
        opts.jobs, opts.tasks_budget = None, None
    return opts


@pytest.mark.parametrize("kind", KINDS)
def test_futures_resolve_to_evaluations_and_the_executor_contract_holds(tmp_path, kind):
    with Pool(TEMPLATE, _opts(tmp_path, kind), kind=kind) as pool:
        assert pool.free_slots() >= 1
        futures = [pool.submit({"mode": "report", "arg": f"{v}:3"}) for v in (3, 6)]
        failing = pool.submit({"mode": "exit", "arg": "3"})
        done, _ = cf.wait([*futures, failing], timeout=120)
        assert len(done) == 3
        evs = [f.result() for f in cf.as_completed(futures)]
        assert {ev.verdict for ev in evs} == {Verdict.OK}
        assert sorted(ev.score for ev in evs) == [1.0, 2.0]
        assert all([s for s, _ in ev.reports] == [1, 2, 3] for ev in evs)
        assert all(ev.attempts == 1 and ev.log_dir and ev.key for ev in evs)
        assert failing.result().verdict == Verdict.ERROR
        with pytest.raises(InputError, match="no value for it"):
            pool.submit({"mode": "ok"})  # {arg} not filled: refused, nothing launched
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit({"mode": "ok", "arg": "1"})
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["by_verdict"] == {"ok": 2, "error": 1}


def test_a_queued_future_cancels_and_never_runs(tmp_path):
    with Pool(TEMPLATE, _opts(tmp_path, None, jobs=1), kind=None) as pool:
        first = pool.submit({"mode": "sleep", "arg": "1"})
        queued = pool.submit({"mode": "ok", "arg": "never"})
        assert queued.cancel() and queued.cancelled()
        assert first.result(timeout=60).verdict == Verdict.OK
    rows = (tmp_path / "out" / "ledger.jsonl").read_text().splitlines()
    assert [json.loads(r)["params"]["arg"] for r in rows] == ["1"]


def test_resume_answers_what_the_ledger_holds_at_once(tmp_path):
    with Pool(TEMPLATE, _opts(tmp_path, None)) as pool:
        before = pool.submit({"mode": "report", "arg": "4:2"}).result(timeout=60)
    with Pool(TEMPLATE, _opts(tmp_path, None, resume=True)) as pool:
        again = pool.submit({"mode": "report", "arg": "4:2"})
        assert again.done() and again.result().key == before.key
        fresh = pool.submit({"mode": "ok", "arg": "new"}).result(timeout=60)
        assert fresh.index > before.index  # numbered after what the ledger holds


def test_pruning_kills_the_whole_tree_and_frees_its_place(tmp_path):
    asked = []

    def stop_at_once(step: int, metrics: dict) -> bool:
        asked.append((step, metrics))
        return True

    with Pool(TEMPLATE, _opts(tmp_path, None, jobs=1)) as pool:
        pruned = pool.submit({"mode": "report", "arg": "9:50"}, on_report=stop_at_once)
        after = pool.submit({"mode": "ok", "arg": "next"})  # one place: it waits for it
        ev = pruned.result(timeout=60)
        assert ev.verdict == Verdict.PRUNED and any("pruned at step 1" in n for n in ev.notes)
        assert asked[0][0] == 1 and ev.attempts == 1  # never retried
        assert len(ev.reports) < 50  # stopped, not run to its end
        assert after.result(timeout=60).verdict == Verdict.OK  # the place was freed
        group = pool.executor.launcher.group
    assert marked(f"{group.id}", prefix=True) == []


def test_a_callback_that_raises_stops_that_evaluation_only(tmp_path):
    def broken(step: int, metrics: dict) -> bool:
        raise ValueError("the search's own bug")

    with Pool(TEMPLATE, _opts(tmp_path, None)) as pool:
        bad = pool.submit({"mode": "report", "arg": "1:20"}, on_report=broken)
        good = pool.submit({"mode": "report", "arg": "2:2"})
        assert bad.result(timeout=60).verdict == Verdict.ERROR
        assert any("ValueError: the search's own bug" in n for n in bad.result().notes)
        assert good.result(timeout=60).verdict == Verdict.OK


def test_shutdown_with_cancel_futures_stops_everything(tmp_path):
    pool = Pool(TEMPLATE, _opts(tmp_path, None, jobs=1))
    running = pool.submit({"mode": "sleep", "arg": "300"})
    queued = pool.submit({"mode": "sleep", "arg": "300"})
    deadline = time.monotonic() + 30
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    pool.shutdown(wait=True, cancel_futures=True)
    assert queued.cancelled()
    assert running.done() and isinstance(running.exception(), cf.CancelledError)
    # the plugin's sweep fails this test if a child or a pids cgroup is left behind


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=25))
def test_no_submission_is_lost_or_resolved_twice(tmp_path_factory, plan):
    """Random submissions, some cancelled at once: every future resolves exactly once, and
    the ledger holds each one that was not cancelled, once."""
    out = tmp_path_factory.mktemp("pool")
    resolved: dict[int, int] = {}
    futures = []
    with Pool(["true", "{x}"], RunOptions(out=out / "out", live=False),
              kind=instant(slots=3)) as pool:
        for n, (value, cancel) in enumerate(plan):
            future = pool.submit({"x": f"{n}-{value}"})
            future.add_done_callback(lambda f, n=n: resolved.__setitem__(n, resolved.get(n, 0)
                                                                          + 1))
            futures.append((future, cancel and future.cancel()))
    assert all(count == 1 for count in resolved.values()) and len(resolved) == len(plan)
    kept = [json.loads(line)["params"]["x"]
            for line in (out / "out" / "ledger.jsonl").read_text().splitlines()]
    expected = [f"{n}-{v}" for n, ((v, _), (_, was_cancelled))
                in enumerate(zip(plan, futures, strict=True)) if not was_cancelled]
    assert sorted(kept) == sorted(expected)
