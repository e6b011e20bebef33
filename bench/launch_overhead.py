"""Launch overhead: `harness launch --method env-isolated` vs the same command run
directly, interleaved pairs, median of the per-pair ratios."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from bench.common import median, save, timed
from harness.command import reference

PAIRS = 5


def run(pairs: int = PAIRS) -> float:
    field = list(reference().argv)
    direct, harnessed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for i in range(pairs):
            direct.append(timed(lambda: subprocess.run(
                field, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)))
            harnessed.append(timed(lambda i=i: subprocess.run(
                [sys.executable, "-m", "harness", "launch", "--method", "env-isolated",
                 "--log-dir", f"{tmp}/{i}", "--json"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)))
    ratios = [h / d for h, d in zip(harnessed, direct, strict=True)]
    ratio = median(ratios)
    save("launch_overhead",
         f"launch overhead: harness launch / direct = {ratio:.3f} (median of {pairs} pairs; "
         f"direct {median(direct):.2f} s, harness {median(harnessed):.2f} s)",
         {"ratio": ratio, "ratios": ratios, "direct_s": direct, "harness_s": harnessed})
    return ratio


if __name__ == "__main__":
    run()
