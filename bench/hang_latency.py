"""Hang verdict latency after the last progress, and time to reap the tree after the
verdict, median of 5 each: a child that blocks (idle) and one that spins (busy), both
timed out by the stall rule, and two deadlocks proven from /proc as they form (a lock
taken twice, a popen-wait pipe cycle), whose last progress is when they formed."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import median, save
from harness.launch import spec as launch
from harness.launch.command import Command

STALL_TIMEOUT_S = 5.0
RUNS = 5
FAKE = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "child.py"
# kind -> (the fake child's mode and argument, the method, the verdict it must get)
KINDS = {"idle": (("sleep", "600"), "subprocess-pipes", "hang"),
         "busy": (("spin",), "subprocess-pipes", "hang"),
         "proven-futex": (("deadlock",), "env-isolated", "hang"),
         "proven-pipe": (("flood", "1000000"), "popen-wait", "pipe_deadlock")}


def _measure(kind: str, runs: int, tmp: str) -> dict[str, list[float]]:
    detect, verdict, reap = [], [], []
    argv, method, verdict_wanted = KINDS[kind]
    for i in range(runs):
        spec = launch.LaunchSpec(Command((sys.executable, str(FAKE), *argv)), method,
                                 log_dir=Path(tmp, f"{kind}-{i}"),
                                 stall_timeout_s=STALL_TIMEOUT_S)
        [o] = launch.run(spec)
        assert o.verdict == verdict_wanted, o.evidence
        t = o.timeline
        detect.append(t["stopped"] - t["last_progress"])
        verdict.append(t["reaped"] - t["last_progress"])
        reap.append(t["reaped"] - t["stopped"])
    return {"detect_s": detect, "verdict_s": verdict, "reap_s": reap}


def run(runs: int = RUNS) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-hang-") as tmp:
        result = {kind: _measure(kind, runs, tmp) for kind in KINDS}
    parts = [f"{kind}: detected {median(r['detect_s']):.2f} s, verdict with tree reaped "
             f"{median(r['verdict_s']):.2f} s after the last progress, reap "
             f"{median(r['reap_s']):.2f} s" for kind, r in result.items()]
    save("hang_latency", f"hang latency (stall-timeout {STALL_TIMEOUT_S:g} s, bound "
         f"{STALL_TIMEOUT_S + 2:g} s, median of {runs}): " + "; ".join(parts),
         {"stall_timeout_s": STALL_TIMEOUT_S, **result})
    return result


if __name__ == "__main__":
    run()
