"""Refusal before import: the median wall time from starting `harness` to its exit 2 on
bad input (a missing grid, a bad number, a bad executor flag), and to `--help`. Nothing
heavy (TensorFlow, Ray, matplotlib) may load before the input is checked, so these stay
near the interpreter's own start-up, which is printed beside them for scale."""

from __future__ import annotations

import subprocess
import sys

from bench.common import median, save, timed

RUNS = 7
BAD = (("phase2", "run", "--grid", "/nonexistent.json"),
       ("phase2", "run", "--executor", "ray", "--ray-address", "127.0.0.1:1"),
       ("launch", "--tasks-limit", "eight"),
       ("diagnose", "/nonexistent.log"))
HELP = (("--help",), ("phase2", "run", "--help"))


def _median_exit(argv: tuple[str, ...], expect: int) -> float:
    cmd = [sys.executable, "-m", "harness", *argv]

    def once() -> None:
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            check=False).returncode
        if rc != expect:
            raise SystemExit(f"bench startup: `harness {' '.join(argv)}` exited {rc}, "
                             f"not {expect}")

    once()  # warm-up: .pyc files, page cache
    return median([timed(once) for _ in range(RUNS)])


def run() -> dict:
    python = median([timed(lambda: subprocess.run([sys.executable, "-c", "pass"],
                                                  check=True)) for _ in range(RUNS)])
    bad = {" ".join(a): _median_exit(a, 2) for a in BAD}
    helps = {" ".join(a): _median_exit(a, 0) for a in HELP}
    save("startup",
         f"startup: bad input refused in {max(bad.values()):.2f} s at worst (median of {RUNS} "
         f"each, {len(bad)} kinds), --help in {max(helps.values()):.2f} s; a bare Python "
         f"starts in {python:.2f} s",
         {"bad_input_s": bad, "help_s": helps, "python_s": python, "runs": RUNS})
    return bad


if __name__ == "__main__":
    run()
