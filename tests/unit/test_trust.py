"""The trust boundary: what a child, a file on disk or a flag hands the harness is untrusted
input. Each attack below was reproduced against the harness before it held; each test runs
it through the real CLI (`python -m harness ...`), the --run-as ones as root with nobody."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from harness.host import cgroup
from harness.phase2.need.caps import Recipe
from tests.unit.conftest import FAKE

pytestmark = pytest.mark.xdist_group("cgroups")
PY = sys.executable


def harness(*args: str, env: dict | None = None, cwd: str | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "harness", *args], capture_output=True, text=True,
                          check=False, timeout=180, cwd=cwd, env={**os.environ, **(env or {})})


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def one_line_exit_2(done: subprocess.CompletedProcess, *words: str) -> None:
    no_traceback(done)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def shared(tmp_path):
    """A directory nobody can reach (pytest's own tmp dirs are root's, 0700)."""
    made = Path(tempfile.mkdtemp(prefix="harness-trust-", dir="/tmp"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def secret_file(shared):
    """A root-only file a child must never read, write or own through the harness."""
    path = shared / "root-only.txt"
    path.write_text("ROOT-ONLY-CONTENT-7f3a\n")
    path.chmod(0o600)
    return path


# -- 1. links planted in the log dir (--run-as) ----------------------------------------

PLANT = ("cd \"$(dirname \"$HARNESS_EVENTS\")\"; "
         "for f in stderr.log stdout.log parent.json samples.jsonl events.jsonl; do "
         "  ln -sf {target} \"$f\" 2>>planted-errors && echo replaced $f >> planted; done; "
         "ln -s {target} metrics.json; ln -s {target} python-under-limits.sh; "
         "ln -s {target} .outcome.json.tmp; echo planted >&2; exit 3")


@pytest.mark.parametrize("method", ["env-isolated", "subprocess-pipes", "shell"])
def test_links_a_run_as_child_plants_are_never_followed(method, shared, secret_file):
    log_dir = shared / "logs"
    command = ["sh", "-c", PLANT.format(target=secret_file)]
    for _ in range(2):  # the second launch re-uses the log dir the first child planted in
        done = harness("launch", "--run-as", "nobody", "--method", method, "--log-dir",
                       str(log_dir), "--json", "--", *command)
        no_traceback(done)
        outcome = json.loads(done.stdout)
        assert outcome["verdict"] == "error" and outcome["exit_code"] == 3, outcome
    assert not (log_dir / "planted").exists()  # it could replace none of the harness's files
    assert secret_file.read_text() == "ROOT-ONLY-CONTENT-7f3a\n"  # nothing written through
    assert secret_file.stat().st_uid == 0 and (secret_file.stat().st_mode & 0o777) == 0o600
    for path in log_dir.iterdir():  # nothing root-only was copied into the logs
        if path.is_file() and not path.is_symlink():
            assert b"ROOT-ONLY" not in path.read_bytes(), path
    assert (log_dir / "stderr.log").read_text().strip() == "planted"


# -- 2. signals chosen by the child -----------------------------------------------------

@pytest.mark.parametrize("sig", ["SIGKILL", "SIGUSR1"])
def test_a_forged_start_event_signals_nothing_outside_the_launch(sig, tmp_path):
    victim = subprocess.Popen(["sleep", "300"])
    try:
        done = harness("launch", "--method", "env-isolated", "--stall-timeout", "2",
                       "--log-dir", str(tmp_path / "l"), "--json", "--",
                       PY, str(FAKE), "forge-start", f"{victim.pid}:{sig}")
        no_traceback(done)
        assert json.loads(done.stdout)["verdict"] == "hang"
        assert victim.poll() is None, "the harness signalled a process outside the launch"
        stacks = (tmp_path / "l" / "stacks.txt").read_text()
        assert "no faulthandler dump" in stacks
    finally:
        victim.kill()
        victim.wait()


# -- 3. code planted in the child's cwd --------------------------------------------------

@pytest.mark.parametrize("limit", [["--tasks-limit", "50"],
                                   ["--run-as", "nobody"]])
def test_code_planted_in_the_childs_cwd_never_runs_as_root(limit, shared):
    proof = shared / "pwned"
    planted = shared / "cwd" / "harness" / "host"
    planted.mkdir(parents=True)
    payload = f"open({str(proof)!r}, 'w').write('root ran me')\n"
    for module in (planted.parent / "__init__.py", planted / "__init__.py",
                   planted / "limits.py", planted.parent / "limits.py"):
        module.write_text(payload)
    (shared / "cwd").chmod(0o755)
    done = harness("launch", *limit, "--cwd", str(shared / "cwd"), "--method", "env-isolated",
                   "--log-dir", str(shared / "l"), "--json", "--", "true")
    no_traceback(done)
    assert json.loads(done.stdout)["verdict"] == "ok", done.stdout
    assert not proof.exists()


# -- 4. root's environment ---------------------------------------------------------------

@pytest.mark.parametrize("method", ["subprocess-pipes", "os-system", "shell"])
def test_a_run_as_child_gets_none_of_roots_secrets_and_its_own_home(method, shared):
    secrets = {"SERVICE_TOKEN": "tok-8d1f-planted", "AWS_SECRET_ACCESS_KEY": "aws-77e1-planted"}
    done = harness("launch", "--run-as", "nobody", "--method", method, "--log-dir",
                   str(shared / "l"), "--", "env", env=secrets)
    no_traceback(done)
    seen = dict(line.split("=", 1) for line in
                (shared / "l" / "stdout.log").read_text().splitlines() if "=" in line)
    assert not set(secrets) & set(seen), sorted(seen)
    assert seen["USER"] == seen["LOGNAME"] == "nobody"
    assert seen["HOME"] == __import__("pwd").getpwnam("nobody").pw_dir


# -- 5. redaction that holds ------------------------------------------------------------

def test_secret_values_json_or_html_would_escape_are_redacted(tmp_path):
    value = 'pa"ss\\wörd-4411-planted'
    done = harness("launch", "--method", "subprocess-pipes", "--log-dir", str(tmp_path / "l"),
                   "--", "sh", "-c", 'echo "token: $SERVICE_TOKEN" >&2; exit 1',
                   env={"SERVICE_TOKEN": value})
    no_traceback(done)
    outcome_text = (tmp_path / "l" / "outcome.json").read_text()
    assert "***" in json.loads(outcome_text)["stderr_tail"]
    from harness.repro.pages import write_repro
    from harness.repro.record import CellRecord
    from harness.repro.report import matrix_report
    from harness.verdict.outcome import Outcome

    outcome = Outcome.from_record(json.loads(outcome_text))
    os.environ["SERVICE_TOKEN"] = value  # the page writer redacts this process's secrets
    try:  # a careless reason that holds the value: the page escapes it, then redacts
        cell = CellRecord.of("c", "subprocess-pipes", f"reason {value}", "ok", [outcome],
                             False)
        write_repro(matrix_report([cell]), tmp_path / "reports")
    finally:
        del os.environ["SERVICE_TOKEN"]
    for path in [*tmp_path.rglob("*.json"), *tmp_path.rglob("*.html")]:
        text = path.read_text()
        for spelling in (value, json.dumps(value)[1:-1], "pa&quot;ss", "w\\u00f6rd-4411"):
            assert spelling not in text, (path, spelling)


# -- 6 and 8. bad data from a child is one failed thing, never a crashed run -------------

def test_malformed_events_and_metrics_never_crash_a_run_or_its_resume(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"x": 1}, {"x": 2}]))
    template = ["--", PY, str(FAKE), "bad-events", "{x}"]
    out = str(tmp_path / "out")
    first = harness("phase2", "run", "--grid", str(grid), "--out", out, "--progress", "lines",
                    *template)
    no_traceback(first)
    assert first.returncode in (0, 1), first.stderr  # children ran: never 'bad input'
    assert len((tmp_path / "out" / "ledger.jsonl").read_text().splitlines()) == 2
    outcome = json.loads(next((tmp_path / "out" / "evals").glob("*/attempt-1/outcome.json"))
                         .read_text())
    assert any("record(s) ignored" in e for e in outcome["evidence"]), outcome["evidence"]
    assert outcome["metrics"] is None  # NaN is not a metric
    again = harness("phase2", "run", "--grid", str(grid), "--out", out, "--resume",
                    "--progress", "lines", *template)
    no_traceback(again)
    assert again.returncode == first.returncode


# -- 7. tampered or stale files under --out and in the plan cache ------------------------

def _finished_run(tmp_path: Path) -> tuple[Path, list[str]]:
    """A run whose one evaluation failed: --resume --retry-failed runs it again, reading
    everything under --out first."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"mode": "exit", "arg": 3}]))
    out = tmp_path / "out"
    args = ["--grid", str(grid), "--out", str(out), "--", PY, str(FAKE), "{mode}", "{arg}"]
    done = harness("phase2", "run", "--progress", "lines", *args)
    assert done.returncode == 1, done.stderr
    return out, args


@pytest.mark.parametrize(("name", "text"), [
    ("ledger.jsonl", '{"key": "0000-x", "params": {}}\n'),
    ("plan.json", '{"per_child_peak": "many"}'),
    ("plan.json", '{"per_child_peak": 1e400}'),
    ("plan.json", '{"per_child_peak": -1000}'),
    ("run.json", "[1, 2]"),
])
def test_a_tampered_out_file_is_exit_2_naming_it(name, text, tmp_path):
    out, args = _finished_run(tmp_path)
    (out / name).write_text(text)
    done = harness("phase2", "run", "--resume", "--retry-failed", "--progress", "lines", *args)
    one_line_exit_2(done, name)


@pytest.mark.parametrize("entry", [{"per_child_peak": "many"}, {"per_child_peak": -1000},
                                   {"per_child_peak": 20, "durations": [1, 2]}])
def test_a_bad_plan_cache_entry_is_skipped_with_one_warning(entry, tmp_path):
    from harness.phase2.need import cache as plan_cache
    from harness.phase2.need.caps import cpus, thread_caps

    template = [PY, str(FAKE), "ok", "{n}"]
    caps = thread_caps(cpus(), 1)
    plan_cache.save(Recipe(template, caps), 5)
    path = next(plan_cache.directory().glob("*.json"))
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, **entry}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"n": 1}, {"n": 2}]))
    done = harness("phase2", "run", "--jobs", "1", "--tasks-budget", "100", "--grid", str(grid),
                   "--out", str(tmp_path / "out"), "--progress", "lines", "--", *template)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(path) in warnings[0], done.stderr
    decisions = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert any("a default for a thread-capped TF child" in d for d in decisions["decisions"])


# -- 9 and 10. flags and files out of range ----------------------------------------------

def test_a_budget_out_of_the_kernels_range_is_one_line_and_leaves_no_cgroup(tmp_path):
    # The launch answers to this test alone (its cgroups are named after the owner): a
    # launch of another xdist worker may hold a cgroup of its own at the same moment.
    owner = {cgroup.OWNER_ENV: str(os.getpid())}
    done = harness("launch", "--tasks-limit", "5000000", "--log-dir", str(tmp_path / "l"),
                   "--", "true", env=owner)
    one_line_exit_2(done, "pid_max")
    assert cgroup.leftovers(owner=os.getpid()) == []


def test_a_deeply_nested_grid_is_one_line(tmp_path):
    grid = tmp_path / "deep.json"
    grid.write_text("[" * 100_000 + "]" * 100_000)
    done = harness("phase2", "run", "--grid", str(grid), "--out", str(tmp_path / "out"))
    one_line_exit_2(done, "deep.json")


# -- 11. nothing escapes supervision -----------------------------------------------------

# A double fork: the grandchild is in the launch's tree for about a millisecond before it
# belongs to init, in a session of its own and without the launch's environment marker.
ESCAPE = ("import os\n"
          "if os.fork() == 0:\n"
          "    os.setsid()\n"
          "    if os.fork() == 0:\n"
          "        os.execve('/bin/sleep', ['sleep', '377'], {})\n"
          "    os._exit(0)\n"
          "os.wait()\n")


@pytest.mark.parametrize("verb", ["launch", "probe"])
def test_a_double_forked_setsid_child_is_found_killed_and_counted(verb, tmp_path):
    extra = ["--method", "env-isolated"] if verb == "launch" else []
    done = harness(verb, *extra, "--log-dir", str(tmp_path / "l"), "--json", "--",
                   PY, "-c", ESCAPE)
    no_traceback(done)
    outcome = json.loads(done.stdout)
    assert any("sleep 377" in s for s in outcome["stragglers"]), outcome["stragglers"]
    time.sleep(0.5)
    left = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "377"]]
    for proc in left:
        proc.send_signal(signal.SIGKILL)
    assert not left, "the escaped grandchild outlived the launch"


# -- 12. nothing overwritten unasked -----------------------------------------------------

def test_a_log_dir_the_harness_did_not_make_is_refused_unless_forced(tmp_path):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = harness("launch", "--log-dir", str(mine), "--", "true")
    one_line_exit_2(refused, "not empty", "--force")
    assert (mine / "notes.txt").read_text() == "keep me"
    forced = harness("launch", "--log-dir", str(mine), "--force", "--", "true")
    assert forced.returncode == 0, forced.stderr
    again = harness("launch", "--log-dir", str(mine), "--", "true")  # now the harness's
    assert again.returncode == 0, again.stderr


def test_an_out_that_holds_other_files_is_refused(tmp_path):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "paper.tex").write_text("keep me")
    done = harness("phase2", "run", "--out", str(mine), "--max-evals", "1")
    one_line_exit_2(done, "not empty")
    assert sorted(p.name for p in mine.iterdir()) == ["paper.tex"]
