from __future__ import annotations

from harness.phase2.need import plan
from harness.phase2.need.caps import thread_caps
from harness.phase2.need.estimate import Need, need_from_peak


def test_thread_caps_split_the_cpus():
    assert thread_caps(64, 4) == {"TF_NUM_INTRAOP_THREADS": "16",
                                       "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "16"}
    assert thread_caps(2, 4)["TF_NUM_INTRAOP_THREADS"] == "1"


def test_plan_fits_children_into_an_imposed_budget():
    p = plan.make(jobs=8, tasks_budget=100, peak=40)
    assert p.per_child_need == 51 and p.concurrency == 1
    assert any("measured" in r for r in p.reasoning)
    assert plan.make(jobs=8, tasks_budget=30, peak=40).concurrency == 0


def test_plan_without_measurement_uses_jobs():
    p = plan.make(jobs=3, tasks_budget=None, peak=None)
    assert p.concurrency == 3 and p.budget_limit > 0


def test_an_unmeasured_peak_teaches_nothing():
    need = Need(value=need_from_peak(12))
    need.completed(0, "here")  # the child exited before a sample caught it
    assert need.value == need_from_peak(12)
    need.completed(20, "here")
    assert need.value == need_from_peak(20)
