"""The workload's command line: exactly the field command's flags, plus harness hooks."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from harness.workload import EXIT_USAGE


class _OneLineParser(argparse.ArgumentParser):
    """Bad input gets one line on stderr and exit 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _bounded(kind, low, high=None, low_open=False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low}" if low_open else f">= {low}"
            span = f"{bound} and <= {high}" if high is not None else bound
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (must be {span})")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="harness.workload", allow_abbrev=False,
                       description="Reference TensorFlow training command (field interface).")
    p.add_argument("--mode", choices=["search", "train"], default="search")
    p.add_argument("--cv_folds", type=_bounded(int, 2, 20), default=3)
    p.add_argument("--data_percentage", type=_bounded(float, 0.0, 100.0, low_open=True),
                   default=100.0)
    p.add_argument("--verbosity", type=int, choices=[0, 1, 2], default=1)
    p.add_argument("--resume_mode", choices=["fresh", "resume"], default="fresh")
    for name, default in (("I", 17.0), ("P", 18.0), ("R", 19.0)):
        p.add_argument(f"--threshold_{name}", type=_bounded(float, 0.0, 1000.0), default=default)
    p.add_argument("--device-mode", dest="device_mode", choices=["single", "multi"],
                   default="multi")
    p.add_argument("--min-gpu-memory", dest="min_gpu_memory", type=_bounded(float, 0.0),
                   default=0.0, metavar="GB")
    p.add_argument("--events", default=os.environ.get("HARNESS_EVENTS"),
                   help="JSON-lines lifecycle events (default: $HARNESS_EVENTS)")
    p.add_argument("--metrics-out", dest="metrics_out",
                   default=os.environ.get("HARNESS_METRICS_OUT"),
                   help="metrics JSON, written atomically (default: $HARNESS_METRICS_OUT)")
    p.add_argument("--cpu-devices", dest="cpu_devices", type=_bounded(int, 1, 64), default=2,
                   help="logical CPU devices to mirror over when no GPU is visible")
    p.add_argument("--epochs", type=_bounded(int, 1, 1000), default=2)
    p.add_argument("--input-pipeline", dest="input_pipeline", choices=["per-replica", "keras"],
                   default="per-replica",
                   help="per-replica: one host pipeline per replica (default); keras: "
                        "model.fit(x, y) through MultiDeviceIterator, ~2x the threads, and "
                        "a rare TF teardown crash (tensorflow/tensorflow#62523)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host-cores", dest="host_cores", type=_bounded(int, 1, 4096),
                   default=len(os.sched_getaffinity(0)),
                   help="size TF's intra/inter-op pools as a host with N cores would "
                        "(TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS win over it)")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
