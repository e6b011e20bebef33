"""Outcome: one record per launch, and classify(), which turns evidence into a verdict.

classify() knows nothing about how a process was started: it reads what the
method reported (exit code / wait status), what supervision observed (stall,
pipe block, timeout, stragglers), what the probes saw (events, patterns, NVML)
and the budget's counters (pids.events).
"""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import envpolicy
from harness.limits import TRAMPOLINE_TAG
from harness.probes import Observed, search_file, tail
from harness.supervise import Observation

VERDICTS = ("ok", "thread_exhaustion", "hang", "pipe_deadlock", "timeout", "crash", "error",
            "no_gpu_work", "launch_error")
THREAD_EXHAUSTION_RE = re.compile(
    r"pthread_create(\(\))? failed|creation via pthread_create|can't start new thread"
    r"|Resource temporarily unavailable|fork: retry|Cannot fork|BlockingIOError: \[Errno 11\]"
    r"|std::system_error.*(Resource temporarily unavailable|EAGAIN)"
    r"|cannot allocate memory for thread-local data",  # glibc, when a new thread's TLS fails
    re.IGNORECASE)
LAUNCH_ERROR_RE = re.compile(rf"{TRAMPOLINE_TAG}: cannot exec|: not found$|"
                             r"No such file or directory$|Permission denied$")
STDERR_TAIL_BYTES = 2000


@dataclass
class Outcome:
    method: str
    condition: str
    sibling: int
    verdict: str
    exit_code: int | None
    signal: int | None
    work_started: bool | None
    completed: bool | None
    gpu_work: dict
    peak_threads: int
    peak_rss: int
    duration_s: float
    orphans: int
    stragglers: list[str]
    budget: dict
    exhausted: str | None  # for thread_exhaustion: which limit ran out
    stderr_tail: str
    log_dir: str
    evidence: list[str] = field(default_factory=list)
    devices: dict | None = None
    metrics: dict | None = None
    stack_dump: str | None = None
    command: str = ""
    timeline: dict = field(default_factory=dict)

    def record(self) -> dict:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Atomically, with secret values redacted."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(envpolicy.redact(json.dumps(self.record(), indent=2, default=str)))
        os.replace(tmp, path)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_and_signal(result: dict) -> tuple[int | None, int | None, list[str]]:
    """(exit_code, signal, evidence) from a method's result, undoing the shell's 128+N."""
    rc = result.get("returncode")
    if rc is None:
        return None, None, []
    if rc < 0:
        return None, -rc, [f"killed by {_signal_name(-rc)}"]
    if result.get("via_shell") and 128 < rc < 128 + 65:
        sig = rc - 128
        return rc, sig, [f"the shell reported exit {rc} = 128+{_signal_name(sig)}"]
    return rc, None, []


def _first_match(paths: list[Path], pattern: re.Pattern[str]) -> str | None:
    return next((line[:300] for p in paths if (line := search_file(p, pattern))), None)


def exhaustion_cause(budget: dict, limits: dict, events_max_delta: int) -> str:
    if events_max_delta > 0:
        return "pids cgroup (pids.max)"
    if limits.get("address_space"):
        return "address space (RLIMIT_AS): thread stacks could not be mapped"
    if budget.get("backend") == "rlimit-nproc":
        return "RLIMIT_NPROC (ulimit -u)"
    return "unknown: no harness limit was hit; look for a limit outside the harness"


def classify(obs: Observation, result: dict | None, seen: Observed, *, budget: dict,
             limits: dict, events_max_delta: int, gpu_expected: bool
             ) -> tuple[str, int | None, int | None, str | None, list[str]]:
    """(verdict, exit_code, signal, exhausted, evidence) for one launch."""
    logs = [obs.files.stderr, obs.files.stdout]
    evidence: list[str] = []
    if result is None:
        why = obs.interrupted or "the launching parent died without reporting"
        return "error", None, None, None, [why, f"parent.log: {tail(obs.files.parent_log, 300)}"]
    exit_code, sig, evidence = exit_and_signal(result)
    if result.get("launch_error"):
        return "launch_error", None, None, None, [result["launch_error"]]
    if exit_code in (126, 127) and (line := _first_match(logs, LAUNCH_ERROR_RE)):
        return "launch_error", exit_code, None, None, [line]
    if obs.stalled and any("blocked in write" in e for e in obs.stall_evidence):
        return "pipe_deadlock", exit_code, sig, None, [*obs.stall_evidence, *evidence]
    failed = exit_code != 0 or sig is not None or obs.stalled or obs.timed_out
    thread_line = _first_match(logs, THREAD_EXHAUSTION_RE)
    if failed and (thread_line or events_max_delta > 0):
        cause = exhaustion_cause(budget, limits, events_max_delta)
        if thread_line:
            evidence.append(thread_line)
        if events_max_delta > 0:
            evidence.append(f"pids.events max +{events_max_delta}: the cgroup refused "
                            f"{events_max_delta} thread/process creations")
        evidence.append(f"exhausted: {cause}")
        return "thread_exhaustion", exit_code, sig, cause, evidence
    if obs.stalled:
        evidence += ["no output, events or CPU activity for the stall timeout",
                     *obs.stall_evidence]
        evidence.append(f"stacks: {obs.stack_dump}" if obs.stack_dump else "no stack dump")
        return "hang", exit_code, sig, None, evidence
    if obs.timed_out:
        return "timeout", exit_code, sig, None, ["still active at the overall timeout",
                                                 *evidence]
    if obs.interrupted:
        return "error", exit_code, sig, None, [f"interrupted: {obs.interrupted}", *evidence]
    if sig is not None:
        return "crash", exit_code, sig, None, evidence
    if exit_code != 0:
        evidence.append(f"exit code {exit_code}")
        if seen.failed:
            evidence.append(f"failed event: {seen.failed}")
        return "error", exit_code, None, None, evidence
    if seen.completed is False:
        return "error", 0, None, None, ["exited 0 without reporting completion"]
    if seen.completed is None:
        evidence.append("completion inferred from exit 0 (no events, no --done-pattern)")
    devices_kind = (seen.devices or {}).get("kind")
    if gpu_expected and (obs.gpu_work.get("status") != "observed" or devices_kind == "cpu"):
        evidence.append(f"GPUs present but NVML saw no compute work by this launch "
                        f"(nvml: {obs.gpu_work.get('status')}, devices: {devices_kind})")
        return "no_gpu_work", 0, None, None, evidence
    return "ok", 0, None, None, evidence


def build(obs: Observation, result: dict | None, seen: Observed, *, method: str,
          condition: str, command: str, budget: dict, limits: dict, events_max_delta: int,
          gpu_expected: bool, metrics: dict | None) -> Outcome:
    verdict, exit_code, sig, exhausted, evidence = classify(
        obs, result, seen, budget=budget, limits=limits, events_max_delta=events_max_delta,
        gpu_expected=gpu_expected)
    duration = obs.duration_s
    if result and result.get("t_end") and result.get("t_launch"):
        duration = round(result["t_end"] - result["t_launch"], 3)
    if obs.stragglers:
        evidence.append(f"left running after the parent returned, killed: {obs.stragglers}")
    if obs.orphans:
        evidence.append(f"ORPHANS still alive after cleanup: {obs.orphans}")
    return Outcome(
        method=method, condition=condition, sibling=obs.index, verdict=verdict,
        exit_code=exit_code, signal=sig, work_started=seen.work_started,
        completed=seen.completed if seen.completed is not None else verdict == "ok",
        gpu_work=obs.gpu_work, peak_threads=obs.peak_threads, peak_rss=obs.peak_rss,
        duration_s=duration, orphans=len(obs.orphans), stragglers=obs.stragglers,
        budget=budget, exhausted=exhausted,
        stderr_tail=tail(obs.files.stderr, STDERR_TAIL_BYTES), log_dir=str(obs.files.dir),
        evidence=[*evidence, *seen.evidence], devices=seen.devices, metrics=metrics,
        stack_dump=obs.stack_dump, command=command, timeline=obs.timeline)
