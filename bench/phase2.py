"""Phase 2: 8 evaluations under a budget that fits about 2 children.

Runner vs sequential wall-time ratio (fresh --out: the runner measures its first
child before admitting a second), the same after `harness phase2 plan` measured
the per-child need into --out (plan time reported apart), and how many
evaluations the naive strategy loses.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import save
from harness.phase2 import RunOptions, plan
from harness.phase2 import run as run_phase2

EVALS = 8
BUDGET = 60  # two children fit even with the runner's 1.25x margin (2 x 29); three
# uncapped children (3 x 22) do not


def _options(strategy: str, out: Path) -> RunOptions:
    # Cold means cold: the plan cache would hand a peak from an earlier run.
    return RunOptions(strategy=strategy, max_evals=EVALS, tasks_budget=BUDGET, out=out,
                      live=False, plan_cache=False)


def _run(strategy: str, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    results = run_phase2(None, None, _options(strategy, out))
    return time.perf_counter() - t0, results


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-phase2-") as tmp:
        seq_s, seq = _run("sequential", Path(tmp, "sequential"))
        run_s, runner = _run("runner", Path(tmp, "runner"))
        t0 = time.perf_counter()
        plan(None, None, _options("runner", Path(tmp, "planned")))
        plan_s = time.perf_counter() - t0
        planned_s, planned = _run("runner", Path(tmp, "planned"))
        naive_s, naive = _run("naive", Path(tmp, "naive"))
    lost = EVALS - naive["summary"]["ok"]
    ratio, planned_ratio = run_s / seq_s, planned_s / seq_s
    data = {"evaluations": EVALS, "tasks_budget": BUDGET, "sequential_s": seq_s,
            "runner_s": run_s, "ratio": ratio, "plan_s": plan_s,
            "runner_after_plan_s": planned_s, "ratio_after_plan": planned_ratio,
            "naive_s": naive_s, "runner_ok": runner["summary"]["ok"],
            "runner_after_plan_ok": planned["summary"]["ok"],
            "sequential_ok": seq["summary"]["ok"], "naive_ok": naive["summary"]["ok"],
            "naive_by_verdict": naive["summary"]["by_verdict"],
            "runner_max_running": runner["summary"]["max_running"],
            "runner_decisions": runner["summary"]["decisions"]}
    save("phase2",
         f"phase2: runner {run_s:.1f} s / sequential {seq_s:.1f} s = {ratio:.2f}; after "
         f"`phase2 plan` ({plan_s:.1f} s, once per command) {planned_s:.1f} s = "
         f"{planned_ratio:.2f}; ok {runner['summary']['ok']}/{planned['summary']['ok']}/"
         f"{seq['summary']['ok']} of {EVALS}; naive lost {lost}/{EVALS} "
         f"({naive['summary']['by_verdict']})", data)
    return data


if __name__ == "__main__":
    run()
