"""The in-parent method (the incident's Solution B): the launching parent runs the
command's Python module or script inside its own process, N times in turn, the way a
search that "calls the training function directly" does. Nothing is forked or exec'd, so
what one call leaves (TF's pools and strategy, Keras graphs, memory, open files) is
there for the next; after each call the process's threads, RSS, open files and GPU
memory are written to calls.jsonl, so a call that kills the process leaves the calls
before it on record.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass

import psutil

from harness import untrusted
from harness.host import limits, nvml
from harness.launch.command import PythonTarget
from harness.verdict import exhaustion
from harness.verdict.verdicts import Verdict

MAX_CALLS = 1000
DEFAULT_CALLS = 3


@dataclass(frozen=True)
class Call:
    """One call, and what the process held right after it."""

    call: int  # 1-based
    verdict: str
    exit: int  # SystemExit's code, 1 for an exception, 0 for a return
    duration_s: float
    threads: int
    rss_mb: float
    fds: int
    gpu_memory_mb: float | None  # in use on the visible GPUs; None without NVML
    error: str | None = None  # the exception's last line


def _held(handle: nvml.Nvml) -> dict:
    """What this process holds now."""
    gpu = None
    if handle.available:
        gpu = round(sum(g.memory_used for g in handle.gpus()) / (1 << 20), 1)
    me = psutil.Process()
    with me.oneshot():
        return {"threads": me.num_threads(), "rss_mb": round(me.memory_info().rss / 2**20, 1),
                "fds": me.num_fds(), "gpu_memory_mb": gpu}


def _exit_code(code: object) -> int:
    """SystemExit's code as the interpreter would exit with it."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _run_once(target: PythonTarget) -> tuple[int, str | None]:
    """One call with a fresh sys.argv: (its exit code, its exception's last line)."""
    import runpy

    sys.argv = [target.name, *target.args]
    try:
        if target.kind == "module":
            runpy.run_module(target.name, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target.name, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc.code), None
    except Exception:  # the call failed as a script would: its traceback on stderr
        text = traceback.format_exc()
        sys.stderr.write(text)
        return 1, text.strip().splitlines()[-1][:300]
    return 0, None


def _verdict(code: int, error: str | None) -> str:
    if code == 0:
        return Verdict.OK
    if error and exhaustion.find_in_lines([error]):
        return Verdict.THREAD_EXHAUSTION
    return Verdict.ERROR


def run_calls(target: PythonTarget, calls: int, *, cwd: str | None, env: dict[str, str],
              rlimits: dict[str, int], record_to: str) -> tuple[int, int]:
    """Run the target `calls` times in this process; (the first failing call's exit code
    or 0, how many calls ran). Each call's record is appended to record_to as it ends."""
    os.environ.update(env)
    limits.apply(None, rlimits, None)  # the cgroup was joined at boot; no exec follows
    if cwd:
        os.chdir(cwd)
    if target.kind == "script":
        sys.path.insert(0, os.path.dirname(os.path.abspath(target.name)))
    first_failure = 0
    with nvml.Nvml.open() as handle:
        for number in range(1, calls + 1):
            started = time.monotonic()
            code, error = _run_once(target)
            sys.stdout.flush()
            sys.stderr.flush()
            done = Call(number, _verdict(code, error), code,
                        round(time.monotonic() - started, 3), error=error, **_held(handle))
            with untrusted.append_or_discard(record_to) as f:
                f.write((json.dumps(asdict(done)) + "\n").encode())
            first_failure = first_failure or code
    return first_failure, calls
