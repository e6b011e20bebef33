"""Bad input everywhere: one line on stderr naming the value, exit 2, nothing launched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host import cgroup

HARNESS = [sys.executable, "-m", "harness"]


def harness(*args: str, cwd: Path | None = None, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, check=False,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def grids(tmp_path):
    files = {
        "malformed.json": "{oops",
        "empty.json": "[]",
        "nested.json": '[{"threshold_I": [1, 2]}]',
        "unknown.json": '[{"threshold_I": 1, "threshold_P": 2}]',
        "extra.json": '[{"threshold_I": 1, "threshold_P": 2, "threshold_R": 3, "lr": 1}]',
        "broken.toml": "[[evaluation]\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "not-a-dir").write_text("")
    (tmp_path / "notexec.py").write_text("print(1)\n")
    (tmp_path / "notexec.py").chmod(0o644)
    return tmp_path


BAD = [
    ("launch", "--method", "bogus"),
    ("launch", "--tasks-limit", "abc"),
    ("launch", "--tasks-limit", "-1"),
    ("launch", "--tasks-limit", "0"),
    ("launch", "--as-limit", "10Q"),
    ("launch", "--as-limit", "-1"),
    ("launch", "--stack-limit", "lots"),
    ("launch", "--nofile-limit", "1.5"),
    ("launch", "--siblings", "0"),
    ("launch", "--parent-tf", "sometimes"),
    ("launch", "--timeout", "-5"),
    ("launch", "--stall-timeout", "abc"),
    ("launch", "--env", "NOEQUALS"),
    ("launch", "--env", "1BAD=x"),
    ("launch", "--unset", "BAD-NAME"),
    ("launch", "--run-as", "no-such-user-xyz"),
    ("launch", "--budget-backend", "magic"),
    ("launch", "--", "/nonexistent/train.py"),
    ("launch", "--", "{tmp}/notexec.py"),
    ("launch", "--cwd", "/nonexistent", "--", "true"),
    ("launch", "--log-dir", "{tmp}/not-a-dir/logs"),
    ("launch", "--work-pattern", "("),
    ("launch", "--done-pattern", "x"),
    ("launch", "--no-such-flag"),
    ("probe", "--", "no-such-program-xyz"),
    ("phase2", "run", "--grid", "{tmp}/malformed.json"),
    ("phase2", "run", "--grid", "{tmp}/empty.json"),
    ("phase2", "run", "--grid", "{tmp}/nested.json"),
    ("phase2", "run", "--grid", "{tmp}/unknown.json"),
    ("phase2", "run", "--grid", "{tmp}/extra.json"),
    ("phase2", "run", "--grid", "{tmp}/broken.toml"),
    ("phase2", "run", "--grid", "{tmp}/missing.json"),
    ("phase2", "run", "--max-evals", "0"),
    ("phase2", "run", "--jobs", "many"),
    ("phase2", "run", "--strategy", "yolo"),
    ("phase2", "run", "--tasks-budget", "10Q"),
    ("phase2", "run", "--out", "{tmp}/not-a-dir/out"),
    ("phase2", "run", "--retry-failed"),
    ("phase2", "run", "--min-gpu-memory", "-1"),
    ("phase2", "run", "--", "train", "--lr", "{lr}"),
    ("phase2", "plan", "--tasks-budget", "abc"),
    ("phase2", "run", "--executor", "kubernetes"),
    ("phase2", "run", "--executor", "ray", "--strategy", "naive"),
    ("phase2", "run", "--executor", "ray", "--jobs", "2"),
    ("phase2", "run", "--ray-address", "127.0.0.1:6379"),
    ("phase2", "run", "--executor", "ray", "--ray-address", "nohost"),
    ("phase2", "run", "--executor", "ray", "--ray-address", "127.0.0.1:1"),
    ("phase2", "run", "--executor", "ray", "--ray-address", "127.0.0.1:1",
     "--tasks-budget", "60"),
    ("phase2", "run", "--executor", "ray", "--cpus-per-eval", "0"),
    ("phase2", "run", "--executor", "ray", "--cpus-per-eval", "abc"),
    ("phase2", "run", "--executor", "ray", "--gpus-per-eval", "-1"),
    ("phase2", "node-resources", "--num-cpus", "0"),
    ("phase2", "node-resources", "--", "cmd"),
    ("doctor", "--bogus"),
    ("doctor", "--", "cmd"),
    ("nosuchcommand",),
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_exit_2_one_line_nothing_launched(args, grids):
    args = [a.replace("{tmp}", str(grids)) for a in args]
    before = set(cgroup.leftovers(owner=cgroup.owner_pid()))
    done = harness(*args, cwd=grids)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("harness"), lines[0]
    assert not (grids / "logs").exists() and not (grids / "phase2-out").exists()
    assert set(cgroup.leftovers(owner=cgroup.owner_pid())) == before


def test_bad_values_are_named():
    assert "'10Q'" in harness("launch", "--as-limit", "10Q").stderr
    assert "'bogus'" in harness("launch", "--method", "bogus").stderr


def test_methods_lists_the_catalogue():
    done = harness("methods")
    assert done.returncode == 0
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == ["subprocess-pipes", "popen-wait", "os-system", "shell", "mp-spawn",
                     "mp-fork", "env-isolated", "phase2", "in-parent"]


def test_launch_json_siblings_summary(tmp_path):
    fake = Path(__file__).resolve().parent.parent / "fakes" / "child.py"
    done = harness("launch", "--json", "--siblings", "2", "--log-dir", str(tmp_path),
                   "--", sys.executable, str(fake), "ok")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["summary"] == {"ok": 2} and len(data["siblings"]) == 2
    assert (tmp_path / "sibling-1" / "outcome.json").exists()


def test_launch_exit_1_when_not_ok(tmp_path):
    fake = Path(__file__).resolve().parent.parent / "fakes" / "child.py"
    done = harness("launch", "--log-dir", str(tmp_path), "--", sys.executable, str(fake),
                   "exit", "4")
    assert done.returncode == 1
    assert "error" in done.stdout


HEAVY = ("tensorflow", "ray", "matplotlib", "rich.progress")
REFUSED_LIGHT = [
    ("--help",),
    ("phase2", "run", "--help"),
    ("phase2", "run", "--grid", "/nonexistent.json"),
    ("phase2", "run", "--max-evals", "0"),
    ("phase2", "run", "--executor", "ray", "--ray-address", "127.0.0.1:1"),
    ("launch", "--tasks-limit", "eight"),
    ("diagnose", "/nonexistent.log"),
]


@pytest.mark.parametrize("args", REFUSED_LIGHT, ids=[" ".join(a) for a in REFUSED_LIGHT])
def test_refused_before_anything_heavy_is_imported(args):
    """A typo costs an interpreter start, not TensorFlow's, Ray's or matplotlib's import:
    the harness's main runs in a Python that reports, as it exits, what got loaded."""
    probe = ("import atexit, sys\n"
             f"atexit.register(lambda: print(sorted(m for m in {HEAVY!r} if m in sys.modules),"
             " file=sys.stderr))\n"
             "from harness.cli.main import main\n"
             f"sys.exit(main({list(args)!r}))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode in (0, 2), done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
