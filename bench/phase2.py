"""Phase 2 at the machine's floor: 6 evaluations under --tasks-budget 100.

In one run, each as a ratio:
- the runner from cold (an empty plan cache) and warm (the cache the cold run left)
  against the floor (the children's CPU seconds over the CPUs, from each run's summary);
- the runner after a tiny command ran first (its peak of 1 in the plan cache, which is
  no evidence about this command): ratio to floor and evaluations lost (must be 0);
- the sequential strategy against the same children run directly, one after another,
  uncapped like its own and with no harness at all (before and after it, averaged);
- the runner's median reap time, and how many evaluations the naive strategy loses.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import save
from harness.phase2 import RunOptions, grid
from harness.phase2 import run as run_phase2
from harness.phase2.need import cache as plan_cache
from harness.phase2.need.cache import CACHE_ENV
from harness.phase2.need.caps import Recipe

EVALS = 6
TINY = ["python3", "-c", "import time; print({x}); time.sleep(1.5)"]
BUDGET = 100  # the figure: room for several capped children (need ~24 each)


def _run(strategy: str, out: Path, cache: bool = True) -> tuple[float, dict]:
    opts = RunOptions(strategy=strategy, max_evals=EVALS, tasks_budget=BUDGET, out=out,
                      live=False, plan_cache=cache)
    t0 = time.perf_counter()
    results = run_phase2(None, None, opts)
    return time.perf_counter() - t0, results


def _direct(caps: dict[str, str]) -> float:
    """The same children, run by hand one after another: the wall time of all."""
    template = grid.default_template()
    commands = [grid.render(template, e) for e in grid.evaluations(grid.default_grid(), EVALS)]
    env = {**os.environ, **caps}
    t0 = time.perf_counter()
    for command in commands:
        subprocess.run(command.argv, env={**env, **command.env}, cwd=command.cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _reap_median(results: dict) -> float | None:
    reaps = [e["timing"]["reap_s"] for e in results["evaluations"]
             if e.get("timing") and e["timing"].get("reap_s") is not None]
    return statistics.median(reaps) if reaps else None


def _guess_deaths(out: Path) -> int:
    """Attempts that died within a grant the runner guessed (the ledger keeps them)."""
    lines = (out / "ledger.jsonl").read_text().splitlines()
    return sum(len(json.loads(line).get("guesses") or []) for line in lines)


def _second_start(results: dict) -> float:
    """Seconds between the first two evaluations' starts."""
    starts = sorted(e["started_at"] for e in results["evaluations"])
    return starts[1] - starts[0]


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-phase2-") as tmp:
        os.environ[CACHE_ENV] = str(Path(tmp, "plan-cache"))  # cold means cold
        before = _direct({})  # the sequential strategy caps nothing; the box drifts, so
        seq_s, seq = _run("sequential", Path(tmp, "sequential"), cache=False)
        direct_s = (before + _direct({})) / 2  # the direct runs bracket it
        cold_s, cold = _run("runner", Path(tmp, "cold"))
        warm_s, warm = _run("runner", Path(tmp, "warm"))
        _, naive = _run("naive", Path(tmp, "naive"), cache=False)
        os.environ[CACHE_ENV] = str(Path(tmp, "polluted-cache"))
        plan_cache.save(Recipe(TINY, {}), 1)  # a tiny command ran by hand before this grid
        polluted_s, polluted = _run("runner", Path(tmp, "polluted"))
        guess_deaths = _guess_deaths(Path(tmp, "polluted"))
        del os.environ[CACHE_ENV]
        # inside: a run's evaluations stream from its ledger, which goes with tmp
        c, w = cold["summary"], warm["summary"]
        data = {"evaluations": EVALS, "tasks_budget": BUDGET, "cpus": c["cpus"],
                "cold_s": cold_s, "cold_floor_s": c["floor_s"], "cold_ratio": c["ratio_to_floor"],
                "warm_s": warm_s, "warm_floor_s": w["floor_s"], "warm_ratio": w["ratio_to_floor"],
                "sequential_s": seq_s, "direct_s": direct_s, "sequential_ratio": seq_s / direct_s,
                "ok": {"cold": c["ok"], "warm": w["ok"], "sequential": seq["summary"]["ok"],
                       "naive": naive["summary"]["ok"]},
                "reap_s_median": _reap_median(cold),
                "second_start_s": {"cold": _second_start(cold), "warm": _second_start(warm)},
                "naive_by_verdict": naive["summary"]["by_verdict"],
                "polluted_s": polluted_s, "polluted_ratio": polluted["summary"]["ratio_to_floor"],
                "polluted_lost": EVALS - polluted["summary"]["ok"],
                "polluted_guess_deaths": guess_deaths,
                "cold_decisions": c["decisions"], "warm_decisions": w["decisions"]}

    save("phase2",
         f"phase2 ({EVALS} evaluations, budget {BUDGET}, {c['cpus']} CPUs): runner / floor = "
         f"{c['ratio_to_floor']:.2f} cold ({cold_s:.1f} s vs {c['floor_s']:.1f} s), "
         f"{w['ratio_to_floor']:.2f} warm ({warm_s:.1f} s vs {w['floor_s']:.1f} s); sequential "
         f"/ direct = {seq_s / direct_s:.3f} ({seq_s:.1f} s vs {direct_s:.1f} s); reap median "
         f"{(data['reap_s_median'] or 0) * 1000:.0f} ms; second child started "
         f"{data['second_start_s']['cold']:.2f} s / {data['second_start_s']['warm']:.2f} s "
         f"after the first (cold / warm); ok cold {c['ok']}, warm {w['ok']}, "
         f"sequential {seq['summary']['ok']} of {EVALS}; naive lost "
         f"{EVALS - naive['summary']['ok']}/{EVALS}; after a tiny command in the cache: "
         f"{data['polluted_ratio']:.2f} x floor, lost {data['polluted_lost']}/{EVALS}, "
         f"{guess_deaths} guess-deaths", data)
    return data


if __name__ == "__main__":
    run()
