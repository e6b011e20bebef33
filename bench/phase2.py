"""Phase 2: 8 evaluations under a budget that fits about 2 children. Runner vs sequential
wall-time ratio, and how many the naive strategy loses."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import save
from harness.phase2 import RunOptions, run as run_phase2

EVALS = 8
BUDGET = 110  # two reference children (~47 threads each) fit, three do not


def _run(strategy: str, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    results = run_phase2(None, None, RunOptions(strategy=strategy, max_evals=EVALS,
                                                tasks_budget=BUDGET, out=out, live=False))
    return time.perf_counter() - t0, results


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-phase2-") as tmp:
        seq_s, seq = _run("sequential", Path(tmp, "sequential"))
        run_s, runner = _run("runner", Path(tmp, "runner"))
        naive_s, naive = _run("naive", Path(tmp, "naive"))
    lost = EVALS - naive["summary"]["ok"]
    ratio = run_s / seq_s
    data = {"evaluations": EVALS, "tasks_budget": BUDGET, "sequential_s": seq_s,
            "runner_s": run_s, "naive_s": naive_s, "ratio": ratio,
            "runner_ok": runner["summary"]["ok"], "sequential_ok": seq["summary"]["ok"],
            "naive_ok": naive["summary"]["ok"], "naive_by_verdict": naive["summary"]["by_verdict"],
            "runner_max_running": runner["summary"]["max_running"]}
    save("phase2",
         f"phase2: runner {run_s:.1f} s / sequential {seq_s:.1f} s = {ratio:.2f} "
         f"({runner['summary']['ok']}/{EVALS} ok vs {seq['summary']['ok']}/{EVALS}); "
         f"naive lost {lost}/{EVALS} ({naive['summary']['by_verdict']})", data)
    return data


if __name__ == "__main__":
    run()
