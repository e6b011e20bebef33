"""Launch overhead: `harness launch --method env-isolated` vs the same command run
directly: one warm-up of each, then interleaved pairs; the median of the per-pair
ratios, and the ratio of the medians beside it (the two disagree when the box is
noisy)."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from bench.common import median, save, timed
from harness.launch.command import reference

PAIRS = 9


def run(pairs: int = PAIRS) -> float:
    field = list(reference().argv)
    direct, harnessed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:

        def run_direct() -> None:
            subprocess.run(field, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)

        def run_harness(i: int) -> None:
            subprocess.run([sys.executable, "-m", "harness", "launch", "--method",
                            "env-isolated", "--log-dir", f"{tmp}/{i}", "--json"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        run_direct()  # warm-up: page cache, .pyc files
        run_harness(-1)
        for i in range(pairs):
            direct.append(timed(run_direct))
            harnessed.append(timed(lambda i=i: run_harness(i)))
    ratios = [h / d for h, d in zip(harnessed, direct, strict=True)]
    ratio = median(ratios)
    of_medians = median(harnessed) / median(direct)
    save("launch_overhead",
         f"launch overhead: harness launch / direct = {ratio:.3f} (median of {pairs} pair "
         f"ratios; ratio of medians {of_medians:.3f}: direct {median(direct):.2f} s, harness "
         f"{median(harnessed):.2f} s)",
         {"ratio": ratio, "ratio_of_medians": of_medians, "ratios": ratios,
          "direct_s": direct, "harness_s": harnessed})
    return ratio


if __name__ == "__main__":
    run()
