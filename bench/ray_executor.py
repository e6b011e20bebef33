"""Phase 2 on Ray vs the local executor: 8 evaluations, one host, budget for ~2 children.

Wall-time ratios ray / local in one run: a cold --out (Ray's first evaluation runs
alone to measure the need; the local runner releases the second child at
work_started), and an --out that already holds plan.json (no measurement). The Ray
walls include starting and stopping the run's own local cluster.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.common import save
from harness.phase2 import RunOptions
from harness.phase2 import run as run_phase2

EVALS = 8
BUDGET = 60  # two capped children (need ~24 each), not three


def _run(executor: str, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    results = run_phase2(None, None, RunOptions(executor=executor, max_evals=EVALS,
                                                tasks_budget=BUDGET, out=out, live=False,
                                                plan_cache=False))  # plan.json only
    return time.perf_counter() - t0, results


def _warm(source: Path, out: Path) -> Path:
    """A fresh --out holding only the plan.json an earlier run measured."""
    out.mkdir()
    shutil.copy(source / "plan.json", out / "plan.json")
    return out


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        local_s, local = _run("local", Path(tmp, "local"))
        ray_s, ray = _run("ray", Path(tmp, "ray"))
        warm_local_s, _ = _run("local", _warm(Path(tmp, "local"), Path(tmp, "local-warm")))
        warm_ray_s, warm_ray = _run("ray", _warm(Path(tmp, "local"), Path(tmp, "ray-warm")))
    data = {"evaluations": EVALS, "tasks_budget": BUDGET, "local_s": local_s, "ray_s": ray_s,
            "ratio_cold": ray_s / local_s, "local_warm_s": warm_local_s,
            "ray_warm_s": warm_ray_s, "ratio_warm": warm_ray_s / warm_local_s,
            "ok": [local["summary"]["ok"], ray["summary"]["ok"], warm_ray["summary"]["ok"]],
            "ray_max_running": [ray["summary"]["max_running"],
                                warm_ray["summary"]["max_running"]]}
    save("ray_executor",
         f"ray executor: cold {ray_s:.1f} s / local {local_s:.1f} s = {data['ratio_cold']:.2f}; "
         f"with plan.json {warm_ray_s:.1f} s / {warm_local_s:.1f} s = "
         f"{data['ratio_warm']:.2f}; ok {data['ok']} of {EVALS}; at once on Ray "
         f"{data['ray_max_running']}", data)
    return data


if __name__ == "__main__":
    run()
