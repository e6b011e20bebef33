"""`harness diagnose` on a 500 MB log: wall time, MB/s and the peak RSS of the whole
command (the kernel's high-water mark, read by a parent that ran only it), against the
same command on a 5 MB log: streaming keeps memory flat however large the log."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save

LINE = "2026-11-30 12:00:00,123 INFO [worker-3] epoch 3/10 step 1200 loss=0.4121 acc=0.881\n"
MESSAGE = ("2026-11-30 12:00:01,456 ERROR [worker-7] runtime/cgo: pthread_create failed: "
           "Resource temporarily unavailable\n")
RUN = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
       " check=False); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _write(path: Path, megabytes: int) -> None:
    block = LINE * 10_000  # ~0.9 MB
    with open(path, "w") as f:
        for i in range(int(megabytes * (1 << 20) / len(block))):
            f.write(block)
            if i % 97 == 50:
                f.write(MESSAGE)


def _measure(path: Path) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of `harness diagnose PATH --json`."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN, sys.executable, "-m", "harness",
                           "diagnose", str(path), "--json"], capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - t0, int(done.stdout.strip())


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-diagnose-") as tmp:
        small, large = Path(tmp, "small.log"), Path(tmp, "large.log")
        _write(small, 5)
        _write(large, 500)
        size = large.stat().st_size
        small_s, small_kib = _measure(small)
        large_s, large_kib = _measure(large)
    data = {"bytes": size, "seconds": large_s, "mb_per_s": size / large_s / 1e6,
            "peak_rss_mib": large_kib / 1024, "small_peak_rss_mib": small_kib / 1024,
            "rss_ratio_500_to_5": large_kib / small_kib, "small_seconds": small_s}
    save("diagnose", f"diagnose ({size / 1e6:.0f} MB log): {large_s:.1f} s "
                     f"({data['mb_per_s']:.0f} MB/s), peak RSS {data['peak_rss_mib']:.0f} MiB "
                     f"vs {data['small_peak_rss_mib']:.0f} MiB for 5 MB "
                     f"({data['rss_ratio_500_to_5']:.2f}x)", data)
    return data


if __name__ == "__main__":
    json.dumps(run())
