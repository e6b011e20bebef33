"""The matrix against its floor, and T: one direct run of the reference workload (the
field command) is T, the unit every other cost here is stated in, because minutes do
not carry from one machine to the next. Then the default matrix runs as `nox -s repro`
runs it (pytest tests/repro on every core) into a temporary report directory, and its
wall time is set against its floor: the children's CPU seconds over the cores, plus the
stall and timeout waits its hang cells must spend (harness/repro/report.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import median, save, timed
from harness.launch.command import reference

T_RUNS = 3


def direct_wall() -> float:
    """T: the median of T_RUNS direct runs of the reference workload, after a warm-up."""
    argv = list(reference().argv)

    def once() -> None:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    once()
    return median([timed(once) for _ in range(T_RUNS)])


def matrix(out: Path) -> tuple[float, dict]:
    workers = str(len(os.sched_getaffinity(0)))
    wall = timed(lambda: subprocess.run(
        [sys.executable, "-m", "pytest", "tests/repro", "-q", "-p", "no:cacheprovider",
         "-n", workers, "--dist", "loadgroup", f"--repro-report={out}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False))
    return wall, json.loads((out / "repro.json").read_text())


def run() -> float:
    t = direct_wall()
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        wall, report = matrix(Path(tmp))
    floor = report["floor"]
    by_condition: dict[str, float] = {}
    for cell in report["cells"]:  # where the floor goes
        by_condition[cell["condition"]] = round(
            by_condition.get(cell["condition"], 0.0) + sum(cell["cpu_s"]), 1)
    save("matrix",
         f"matrix: T = {t:.1f} s (direct reference workload, median of {T_RUNS}); the "
         f"matrix took {wall:.0f} s = {wall / t:.0f} T, {floor['ratio']:.2f}x its floor of "
         f"{floor['floor_s']:.0f} s ({floor['child_cpu_s']:.0f} CPU-s of children over "
         f"{floor['cores']} cores + {floor['waits_s']:.0f} s of waits); "
         f"{'all' if report['passed'] else 'NOT all'} {len(report['cells'])} cells passed",
         {"t_s": t, "pytest_wall_s": wall, "floor": floor, "passed": report["passed"],
          "cells": len(report["cells"]), "child_cpu_s_by_condition": by_condition})
    return floor["ratio"]


if __name__ == "__main__":
    run()
