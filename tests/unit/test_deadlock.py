"""Deadlocks proven from /proc as they form (harness/supervise/deadlock.py), on live
processes made here (small C and Python programs), and never where a process can still
move: a timed wait, a shared futex, a late reader, a stopped process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.launch import spec as launch
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.supervise.deadlock import PROVEN
from harness.verdict.verdicts import Verdict

PROGRAMS = Path(__file__).resolve().parent / "deadlock_programs"
FAKE = Path(__file__).resolve().parent.parent / "fakes" / "child.py"
STALL_S = 60.0  # far above the provers' settle time: a proof says so, a timeout says so

FORK_WITH_LOCK_PY = textwrap.dedent("""
    import os, threading, time
    lock = threading.Lock()
    def hold():
        lock.acquire()
        threading.Event().wait()  # keeps the lock, in an untimed private futex wait
    threading.Thread(target=hold, daemon=True).start()
    time.sleep(0.2)
    child = os.fork()
    if child == 0:
        lock.acquire()  # the holder does not exist here
        os._exit(0)
    os.waitpid(child, 0)
""")
LATE_READER_PY = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "print('x' * 300000)"],
                             stdout=subprocess.PIPE)
    time.sleep(3)  # the child is blocked on a full pipe meanwhile; then it is read
    assert len(child.stdout.read()) > 300000
    child.wait()
""")
TIMED_EVENT_PY = "import threading; threading.Event().wait(3)"
STOPPED_PY = textwrap.dedent("""
    import os, signal, threading
    lock = threading.Lock()
    lock.acquire()
    os.kill(os.getpid(), signal.SIGSTOP)  # stopped: never proven, whatever it waits for
    lock.acquire()
""")


def _launch(tmp_path: Path, argv: list[str], method: str = "env-isolated",
            stall_s: float = STALL_S):
    spec = launch.LaunchSpec(Command(tuple(argv)), method, Condition(),
                             tmp_path / f"launch-{method}", 120.0, stall_s)
    [outcome] = launch.run(spec)
    return outcome


def _proven(outcome) -> bool:
    return any(line.startswith(PROVEN) for line in outcome.evidence)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, str]:
    """The C programs, compiled here."""
    out = tmp_path_factory.mktemp("deadlock-programs")
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (nox -s tests installs gcc)"
    found = {}
    for source in PROGRAMS.glob("*.c"):
        exe = out / source.stem
        subprocess.run([cc, "-O0", "-pthread", "-o", str(exe), str(source)], check=True)
        found[source.stem] = str(exe)
    return found


# -- proven ------------------------------------------------------------------------------

def test_fork_with_a_lock_held_in_c_is_proven(built, tmp_path):
    outcome = _launch(tmp_path, [built["fork_with_lock"]])
    assert outcome.verdict == Verdict.HANG and _proven(outcome), outcome.evidence
    assert any("private futex wait with no timeout" in e for e in outcome.evidence)
    assert any("wait4(" in e and "waiting for the above" in e for e in outcome.evidence)


def test_fork_with_a_lock_held_in_python_is_proven(tmp_path):
    outcome = _launch(tmp_path, [sys.executable, "-c", FORK_WITH_LOCK_PY])
    assert outcome.verdict == Verdict.HANG and _proven(outcome), outcome.evidence


def test_a_lock_taken_twice_is_proven_through_every_waiting_ancestor(tmp_path):
    outcome = _launch(tmp_path, [sys.executable, str(FAKE), "deadlock"], method="shell")
    assert outcome.verdict == Verdict.HANG and _proven(outcome), outcome.evidence
    assert any("wait4(-1)" in e for e in outcome.evidence)  # sh waits for any child


def test_the_popen_wait_pipe_cycle_is_a_proven_pipe_deadlock(tmp_path):
    outcome = _launch(tmp_path, [sys.executable, str(FAKE), "flood", "1000000"],
                      method="popen-wait")
    assert outcome.verdict == Verdict.PIPE_DEADLOCK and _proven(outcome), outcome.evidence
    cycle = [e for e in outcome.evidence if "pipe:[" in e]
    assert any("blocked in write(fd=1)" in e for e in cycle), cycle
    assert any("holding the read end" in e and "wait4(" in e for e in cycle), cycle


# -- never proven ------------------------------------------------------------------------

@pytest.mark.parametrize("program", ["timed_wait", "shared_futex"])
def test_waits_another_thread_or_process_can_end_are_never_proven(built, tmp_path, program):
    outcome = _launch(tmp_path, [built[program]])
    assert outcome.verdict == Verdict.OK and not _proven(outcome), outcome.evidence


@pytest.mark.parametrize("source", [TIMED_EVENT_PY, LATE_READER_PY],
                         ids=["timed-event-wait", "late-reader"])
def test_python_that_moves_again_is_never_proven(tmp_path, source):
    outcome = _launch(tmp_path, [sys.executable, "-c", source])
    assert outcome.verdict == Verdict.OK and not _proven(outcome), outcome.evidence


def test_a_reader_whose_writer_is_busy_is_never_proven(tmp_path):
    burn = f"{sys.executable} {FAKE} burn 2; echo done"
    outcome = _launch(tmp_path, ["sh", "-c", f"({burn}) | cat"])
    assert outcome.verdict == Verdict.OK and not _proven(outcome), outcome.evidence


def test_a_stopped_process_is_said_not_proven(tmp_path):
    outcome = _launch(tmp_path, [sys.executable, "-c", STOPPED_PY], stall_s=3.0)
    assert outcome.verdict == Verdict.HANG and not _proven(outcome), outcome.evidence
    assert any("stopped (SIGSTOP): not proven" in e for e in outcome.evidence)
    assert any("timed out by the stall rule" in e for e in outcome.evidence)
