"""Grids of many evaluations: the runner's cost per evaluation and its memory, as ratios to
the smallest size, measured in this run.

- fake: an executor that finishes every attempt at once (the policy, ledger, summary,
  results.json and report only) for 1,000, 10,000 and 100,000 evaluations;
- real: trivial children (`python -c 'print({x})'`) through the local executor, 2 at a
  time, for 100, 1,000 and 2,000.

Each size runs in a fresh process, so its peak RSS (the kernel's high-water mark) is the
runner's alone. `python -m bench scale [fake|real]`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save
from tests.fakes.instant import instant

FAKE_SIZES = (1_000, 10_000, 100_000)
REAL_SIZES = (100, 1_000, 2_000)
TRIVIAL = [sys.executable, "-c", "print({x})"]


def child(kind: str, n: int, out: str) -> None:
    """One measured run, in this process (called through `python -m bench.scale`)."""
    import resource

    from harness.phase2 import runner
    from harness.phase2.options import RunOptions

    grid = [{"x": i} for i in range(n)]
    opts = RunOptions(out=Path(out), live=False, plan_cache=False, jobs=2,
                      stall_timeout_s=30.0)
    t0 = time.perf_counter()
    if kind == "fake":
        results = runner.run(["true", "{x}"], grid, opts, kind=instant())
    else:
        results = runner.run(TRIVIAL, grid, opts)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "wall_s": wall, "ok": results["summary"]["ok"],
                      "rss_mib": peak_kib / 1024,
                      "results_bytes": (Path(out) / "results.json").stat().st_size,
                      "report_bytes": (Path(out) / "report.html").stat().st_size}))


def _measure(kind: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-scale-{kind}-") as tmp:
        done = subprocess.run([sys.executable, "-m", "bench.scale", kind, str(n),
                               str(Path(tmp, "out"))], capture_output=True, text=True,
                              check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["per_eval_s"] = row["wall_s"] / n
    return row


def _series(kind: str, sizes: tuple[int, ...]) -> dict:
    rows = [_measure(kind, n) for n in sizes]
    small, large = rows[0], rows[-1]
    return {"rows": rows, "time_ratio": large["per_eval_s"] / small["per_eval_s"],
            "rss_ratio": large["rss_mib"] / small["rss_mib"]}


def _line(kind: str, series: dict) -> str:
    rows = series["rows"]
    sizes = ", ".join(f"{r['n']:,}: {r['per_eval_s'] * 1000:.2f} ms/eval {r['rss_mib']:.0f} MiB"
                      for r in rows)
    return (f"{kind}: per evaluation {series['time_ratio']:.2f}x, RSS "
            f"{series['rss_ratio']:.2f}x from {rows[0]['n']:,} to {rows[-1]['n']:,} ({sizes}; "
            f"report {rows[-1]['report_bytes'] / 1e6:.2f} MB, results.json "
            f"{rows[-1]['results_bytes'] / 1e6:.1f} MB)")


def run(which: tuple[str, ...] = ("fake", "real")) -> dict:
    data = {}
    if "fake" in which:
        data["fake"] = _series("fake", FAKE_SIZES)
    if "real" in which:
        data["real"] = _series("real", REAL_SIZES)
    save("scale", "scale: " + "; ".join(_line(k, s) for k, s in data.items()), data)
    return data


if __name__ == "__main__":
    if len(sys.argv) == 4:
        child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    else:
        run(tuple(sys.argv[1:]) or ("fake", "real"))
