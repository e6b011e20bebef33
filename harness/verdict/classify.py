"""classify(): what one launch's evidence says happened.

It knows nothing about how a process was started: it reads what the method reported
(exit code / wait status), what supervision observed (stall, pipe block, timeout,
stragglers), what the probes saw (events, patterns, NVML) and the budget's counters
(pids.events).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

from harness.host.limits import TRAMPOLINE_TAG
from harness.supervise.files import LaunchFiles
from harness.supervise.observation import Observation
from harness.supervise.pipes import BLOCKED_WRITE
from harness.verdict import exhaustion
from harness.verdict.probes import Observed, search_file, tail
from harness.verdict.verdicts import Verdict

LAUNCH_ERROR_RE = re.compile(rf"{TRAMPOLINE_TAG}: cannot exec|: not found$|"
                             r"No such file or directory$|Permission denied$")
# execve after a switch to another uid fails with EAGAIN while that uid is over its
# RLIMIT_NPROC (the kernel checks at exec since Linux 3.1, not at setuid): the trampoline
# says so as "cannot exec 'sh': Resource temporarily unavailable". A task limit, not a
# command that cannot start.
EXEC_REFUSED_RE = re.compile(rf"{TRAMPOLINE_TAG}: cannot exec .*Resource temporarily "
                             "unavailable")
BUSY_CORE_SHARE = 0.25  # CPU per wall second without progress that makes a stall "busy"


@dataclass
class Classification:
    """What classify() concluded from one launch's evidence."""

    verdict: Verdict
    exit_code: int | None = None
    signal: int | None = None
    exhausted: str | None = None  # for thread_exhaustion: which limit ran out
    evidence: list[str] = field(default_factory=list)


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


ERROR_LINE_RE = re.compile(r"Error\b|error:|Check failed|Traceback|FATAL|^F\d{4} ")


def first_error(files: LaunchFiles) -> str | None:
    """The line that says what went wrong: a thread creation that failed, else the first
    line of stderr that looks like an error."""
    found = exhaustion.find([files.stderr])
    return found.line if found else _first_match([files.stderr], ERROR_LINE_RE)


def _first_match(paths: list[Path], pattern: re.Pattern[str]) -> str | None:
    return next((line[:300] for p in paths if (line := search_file(p, pattern))), None)


DEFAULT_STACK_BYTES = 8 << 20  # glibc's thread stack when RLIMIT_STACK is not set here
# A new glibc thread maps its stack, and on its first malloc a 64 MiB arena, which glibc
# reserves as 128 MiB to align it: what one more thread needs beyond its stack.
ARENA_RESERVE_BYTES = 128 << 20


def thread_address_space(limits: dict) -> int:
    """Address space one more thread needs: its stack and its malloc arena."""
    return (limits.get("stack") or DEFAULT_STACK_BYTES) + ARENA_RESERVE_BYTES


def address_space_shown(limits: dict, peak_vms: int) -> bool:
    """The launch's own numbers show RLIMIT_AS ran out: its largest process (the kernel's
    VmPeak) came closer to the limit than one more thread needs."""
    limit = limits.get("address_space")
    return bool(limit and peak_vms and limit - peak_vms < thread_address_space(limits))


def exhaustion_cause(budget: dict, limits: dict, events_max_delta: int,
                     peak_vms: int = 0) -> str:
    """Which limit ran out, from the launch's evidence: the budget's own counter, the
    address space it reached; RLIMIT_NPROC where that is the budget's backend."""
    if events_max_delta > 0:
        return "pids cgroup (pids.max)"
    if address_space_shown(limits, peak_vms):
        return "address space (RLIMIT_AS): thread stacks could not be mapped"
    if budget.get("backend") == "rlimit-nproc":
        return "RLIMIT_NPROC (ulimit -u)"
    return "unknown: no harness limit was hit; look for a limit outside the harness"


def classify(obs: Observation, result: dict | None, seen: Observed, *, budget: dict,
             limits: dict, events_max_delta: int, gpu_expected: bool) -> Classification:
    """The verdict for one launch, with the evidence behind it."""
    if result is None:
        why = obs.interrupted or "the launching parent died without reporting"
        return Classification(Verdict.ERROR, evidence=[
            why, f"parent.log: {tail(obs.files.parent_log, 300)}"])
    exit_code, sig, evidence = exit_and_signal(result)
    logs = [obs.files.stderr, obs.files.stdout]
    if result.get("launch_error"):
        return Classification(Verdict.LAUNCH_ERROR, evidence=[result["launch_error"]])
    if exit_code in (126, 127) and (line := _first_match(logs, LAUNCH_ERROR_RE)):
        if EXEC_REFUSED_RE.search(line):  # a task limit refused the exec: not a bad command
            return _exec_refused(line, exit_code, evidence, obs, budget, limits,
                                 events_max_delta)
        return Classification(Verdict.LAUNCH_ERROR, exit_code, evidence=[line])
    if obs.proof_kind == "pipe" or (
            obs.stalled and any(BLOCKED_WRITE in e for e in obs.stall_evidence)):
        return Classification(Verdict.PIPE_DEADLOCK, exit_code, sig,
                              evidence=[*_stall_story(obs), *obs.stall_evidence, *evidence])
    failed = exit_code != 0 or sig is not None or obs.stalled or obs.timed_out
    found = exhaustion.find(logs) if failed else None
    if failed and (found or events_max_delta > 0):
        return _exhausted(found, exit_code, sig, evidence, obs, budget, limits,
                          events_max_delta)
    if obs.stalled:
        evidence += [*_stall_story(obs), *obs.stall_evidence]
        evidence.append(f"stacks: {obs.stack_dump}" if obs.stack_dump else "no stack dump")
        return Classification(Verdict.HANG, exit_code, sig, evidence=evidence)
    if obs.timed_out:
        return Classification(Verdict.TIMEOUT, exit_code, sig, evidence=[
            "still active at the overall timeout", *evidence])
    if obs.interrupted:
        return Classification(Verdict.ERROR, exit_code, sig, evidence=[
            f"interrupted: {obs.interrupted}", *evidence])
    if sig is not None:
        return Classification(Verdict.CRASH, exit_code, sig, evidence=evidence)
    return _exited(exit_code, seen, obs.gpu_work, gpu_expected, evidence)


def _exec_refused(line: str, exit_code: int | None, evidence: list[str], obs: Observation,
                  budget: dict, limits: dict, events_max_delta: int) -> Classification:
    """The launch's exec was refused by a task limit (EAGAIN): thread exhaustion."""
    found = _exhausted(None, exit_code, None, evidence, obs, budget, limits, events_max_delta)
    why = ("the kernel refused the child's exec with EAGAIN after the switch to its uid: "
           "that uid was over RLIMIT_NPROC (checked at exec since Linux 3.1)")
    return Classification(found.verdict, exit_code, None, found.exhausted,
                          [line, why, *found.evidence])


def _exhausted(found: exhaustion.Match | None, exit_code: int | None, sig: int | None,
               evidence: list[str], obs: Observation, budget: dict, limits: dict,
               events_max_delta: int) -> Classification:
    cause = exhaustion_cause(budget, limits, events_max_delta, obs.peak_vms)
    if found:
        evidence.append(found.line)
        evidence.append(f"{found.runtime}: a thread or process could not be created")
    if events_max_delta > 0:
        evidence.append(f"pids.events max +{events_max_delta}: the cgroup refused "
                        f"{events_max_delta} thread/process creations")
    elif str(budget.get("backend", "")).startswith("pids-cgroup"):
        evidence.append("pids.events max did not move: the budget's cgroup refused nothing")
    if limits.get("address_space"):
        left = (limits["address_space"] - obs.peak_vms) >> 20
        evidence.append(f"peak VmSize {obs.peak_vms >> 20} MiB of RLIMIT_AS "
                        f"{limits['address_space'] >> 20} MiB: {left} MiB left, one more "
                        f"thread needs {thread_address_space(limits) >> 20} MiB (stack + "
                        "malloc arena)")
    evidence.append(f"exhausted: {cause}")
    return Classification(Verdict.THREAD_EXHAUSTION, exit_code, sig, cause, evidence)


def _stall_story(obs: Observation) -> list[str]:
    """Proven from /proc as it formed, or timed out by the stall rule: idle (blocked) or
    busy (spinning), both made no progress for the stall timeout."""
    if obs.proof:
        return [*obs.proof, f"proven {obs.stall_s:.1f} s after the last progress, without "
                            "waiting for the stall timeout"]
    if obs.stall_s and obs.stall_cpu_s >= BUSY_CORE_SHARE * obs.stall_s:
        return [f"busy without progress: the tree burned {obs.stall_cpu_s:.1f} CPU-s in "
                f"{obs.stall_s:.1f} s with no output, events, log growth or writes (a spin, "
                "or a collective waiting on a dead peer)",
                "if this silent phase is legitimate, raise --stall-timeout"]
    return [f"no output, events, log growth or writes for {obs.stall_s:.1f} s, and idle "
            f"({obs.stall_cpu_s:.1f} CPU-s): blocked",
            "timed out by the stall rule: no deadlock could be proven from /proc"]


def _exited(exit_code: int | None, seen: Observed, gpu_work: dict, gpu_expected: bool,
            evidence: list[str]) -> Classification:
    """A launch that exited by itself, neither signalled nor stopped by supervision."""
    if exit_code != 0:
        evidence.append(f"exit code {exit_code}")
        if seen.failed:
            evidence.append(f"failed event: {seen.failed}")
        return Classification(Verdict.ERROR, exit_code, evidence=evidence)
    if seen.completed is False:
        return Classification(Verdict.ERROR, 0, evidence=[
            "exited 0 without reporting completion"])
    if seen.completed is None:
        evidence.append("completion inferred from exit 0 (no events, no --done-pattern)")
    if gpu_expected and gpu_work.get("status") == "not_observed":
        said = ", ".join(f"{k} {v}" for k, v in gpu_work.get("sources", {}).items())
        evidence.append(f"GPUs present but no source saw GPU work by this launch ({said})")
        return Classification(Verdict.NO_GPU_WORK, 0, evidence=evidence)
    if gpu_expected and gpu_work.get("status") == "unknown":
        evidence.append(f"GPU work unknown: {gpu_work.get('reason') or 'no source could tell'}")
    return Classification(Verdict.OK, 0, evidence=evidence)
