"""The fault suite: whatever a child (or the harness) does, the verdict is right, the
output is kept, and nothing is left behind (the sweep fixture checks processes and
cgroups after every test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.host import cgroup
from harness.host.proctree import marked
from tests.unit.conftest import FAKE

MB = 1 << 20


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSEGV", "SIGABRT"])
def test_child_killed_by_signal(run_fake, sig):
    [o] = run_fake("signal", sig)
    assert o.verdict == "crash" and o.signal == getattr(signal, sig), o.evidence
    assert o.orphans == 0


def test_grandchild_holding_the_pipe_subprocess_pipes(run_fake):
    """subprocess.run(capture_output=True) waits for every holder of the pipe."""
    [o] = run_fake("grandchild", "300", method="subprocess-pipes")
    assert o.verdict == "hang", o.evidence
    assert any("still holds pipe:" in e for e in o.evidence), o.evidence
    assert o.orphans == 0
    assert "grandchild lives on" in Path(o.log_dir, "stdout.log").read_text()


def test_grandchild_left_running_by_shell(run_fake):
    """With inherited output the shell returns; the leftover grandchild is reported and
    killed."""
    [o] = run_fake("grandchild", "300", method="shell")
    assert o.verdict == "ok", o.evidence
    assert any("sleep" in s for s in o.stragglers), o.stragglers
    assert o.orphans == 0
    assert "grandchild lives on" in Path(o.log_dir, "stdout.log").read_text()


@pytest.mark.parametrize("method", ["subprocess-pipes", "env-isolated"])
def test_50_mb_of_output_is_kept_whole(run_fake, method):
    [o] = run_fake("flood", str(50 * MB), method=method)
    assert o.verdict == "ok", o.evidence
    assert os.path.getsize(Path(o.log_dir, "stdout.log")) == 50 * MB


def test_child_ignoring_sigterm_is_killed(run_fake):
    [o] = run_fake("ignore-term", "300")
    assert o.verdict == "hang" and o.signal == 9, o.evidence
    assert o.orphans == 0


def _start_cli(log_dir: Path, *child: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "launch", "--json",
                             "--stall-timeout", "120", "--log-dir", str(log_dir), "--",
                             sys.executable, str(FAKE), *child],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _started(log_dir: Path) -> bool:
    events = log_dir / "events.jsonl"
    return events.exists() and "work_started" in events.read_text()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_harness_interrupted_mid_run(tmp_path, sig, code):
    cli = _start_cli(tmp_path, "sleep", "300")
    _wait_for(lambda: _started(tmp_path))
    child_pid = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])["pid"]
    cli.send_signal(sig)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == code, err
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["verdict"] == "error"
    assert any(e.startswith("interrupted") for e in outcome["evidence"])
    assert not psutil.pid_exists(child_pid) or \
        psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert not cgroup.leftovers(owner=cgroup.owner_pid())


def test_launching_parent_dies(tmp_path):
    cli = _start_cli(tmp_path, "sleep", "300")
    _wait_for(lambda: _started(tmp_path))
    spec = json.loads((tmp_path / "parent-spec.json").read_text())
    parent = next(p for p in psutil.process_iter(["cmdline"])
                  if "harness.launch.parent" in " ".join(p.info["cmdline"] or [])
                  and str(spec["harness_pid"]) in " ".join(p.info["cmdline"]))
    parent.kill()
    out, _ = cli.communicate(timeout=60)
    outcome = json.loads(out)
    assert cli.returncode == 1
    assert outcome["verdict"] == "error" and outcome["orphans"] == 0, outcome["evidence"]
    assert any("died without reporting" in e for e in outcome["evidence"])
    assert marked(f"{cgroup.owner_pid()}:", prefix=True) == []
