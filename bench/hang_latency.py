"""Hang verdict latency after the last progress, and time to reap the tree after the
verdict, for a child that writes, then blocks (median of 5)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import median, save
from harness import launch
from harness.command import Command

STALL_TIMEOUT_S = 5.0
RUNS = 5
FAKE = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "child.py"


def run(runs: int = RUNS) -> dict:
    detect, verdict, reap = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-hang-") as tmp:
        for i in range(runs):
            spec = launch.LaunchSpec(Command((sys.executable, str(FAKE), "sleep", "600")),
                                     "subprocess-pipes", log_dir=Path(tmp, str(i)),
                                     stall_timeout_s=STALL_TIMEOUT_S)
            [o] = launch.run(spec)
            assert o.verdict == "hang", o.evidence
            t = o.timeline
            detect.append(t["stopped"] - t["last_progress"])
            verdict.append(t["reaped"] - t["last_progress"])
            reap.append(t["reaped"] - t["stopped"])
    result = {"stall_timeout_s": STALL_TIMEOUT_S, "detect_s": detect, "verdict_s": verdict,
              "reap_s": reap}
    save("hang_latency",
         f"hang latency: stall detected {median(detect):.2f} s and verdict with tree reaped "
         f"{median(verdict):.2f} s after the last progress (stall-timeout "
         f"{STALL_TIMEOUT_S:g} s, bound {STALL_TIMEOUT_S + 2:g} s); reap after verdict "
         f"{median(reap):.2f} s (median of {runs})", result)
    return result


if __name__ == "__main__":
    run()
