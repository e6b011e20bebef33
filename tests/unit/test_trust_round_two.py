"""Trust, round two (docs/trust.md): special files, full disks, a second runner, huge
logs, values that reach the kernel or the terminal. Each case goes through the CLI, where
a user meets it: one line and exit 2 before anything starts, or a failed thing with its
reason once children ran; never a traceback, a hang, a doubled evaluation or a leak."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.host import cgroup
from harness.supervise.files import LaunchFiles
from harness.supervise.observation import Observation
from harness.verdict.classify import classify
from harness.verdict.probes import Observed
from harness.workload import events as ev

pytestmark = pytest.mark.xdist_group("cgroups")
PY = sys.executable
FAKE = str(Path(__file__).resolve().parent.parent / "fakes" / "child.py")
TEMPLATE = ["--", PY, FAKE, "{mode}", "{arg}"]
TF_ABORT = ("F0000 env.cc:84] Check failed: ret == 0 (11 vs. 0)Thread tf_Compute creation "
            "via pthread_create() failed.")


def harness(*args: str, env: dict | None = None, cwd: str | Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "harness", *args], capture_output=True, text=True,
                          check=False, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess, code: int, said: str) -> None:
    assert done.returncode == code, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], done.stderr[-2000:]


def grid(tmp_path: Path, rows: list[dict], name: str = "grid.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return str(path)


def mine() -> set[Path]:
    return set(cgroup.leftovers(owner=cgroup.owner_pid()))


# -- files that are not what they seem ------------------------------------------------

@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_grid_that_is_a_fifo_or_a_device_is_one_line(tmp_path, special):
    path = tmp_path / "grid.json"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = Path(special)
    done = harness("phase2", "run", "--grid", str(path), "--out", str(tmp_path / "out"),
                   timeout=30)
    one_line(done, 2, "not a regular file")


@pytest.mark.parametrize("target", ["/proc", "/proc/self", "/proc/kmsg"])
def test_diagnose_refuses_the_kernels_live_files(target):
    one_line(harness("diagnose", target, timeout=30), 2, "the kernel's live state")


def test_a_log_after_a_copytruncate_hole_is_read(tmp_path):
    log = tmp_path / "job.log"
    with open(log, "wb") as f:  # logrotate's copytruncate: the writer's offset stays
        f.truncate(200_000)
        f.seek(200_000)
        f.write(f"INFO step 9\n{TF_ABORT}\n".encode())
    done = harness("diagnose", "--json", str(log))
    assert done.returncode == 1, done.stdout + done.stderr
    [found] = json.loads(done.stdout)["files"]
    assert found["verdict"] == "thread_exhaustion" and found["skipped"] is None


def test_a_plan_cache_reached_through_another_users_link_is_not_used(tmp_path):
    target = tmp_path / "roots-target"
    target.mkdir()
    link = tmp_path / "cache"
    link.symlink_to(target)
    nobody = pwd.getpwnam("nobody")
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    rows = [{"mode": "ok", "arg": i} for i in range(2)]
    done = harness("phase2", "run", "--grid", grid(tmp_path, rows), "--out",
                   str(tmp_path / "out"), "--progress", "lines", *TEMPLATE,
                   env={"HARNESS_PLAN_CACHE": str(link / "plans")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ignoring the plan cache" in done.stderr and "owned by uid" in done.stderr
    assert list(target.iterdir()) == []  # nothing written through the link


# -- values that reach the kernel or the terminal ---------------------------------------

@pytest.mark.parametrize(("value", "said"), [("a\x00b", "NUL byte"),
                                             ("x" * 10_000_000, "characters long")])
def test_a_grid_value_no_argv_can_carry_is_refused_before_anything_starts(tmp_path, value,
                                                                           said):
    rows = [{"mode": "ok", "arg": value}, {"mode": "ok", "arg": "1"}]
    done = harness("phase2", "run", "--grid", grid(tmp_path, rows), "--out",
                   str(tmp_path / "out"), *TEMPLATE)
    one_line(done, 2, said)
    assert not (tmp_path / "out").exists()


def test_toml_infinity_is_refused(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('[[evaluation]]\nmode = "ok"\narg = inf\n')
    done = harness("phase2", "run", "--grid", str(path), "--out", str(tmp_path / "out"),
                   *TEMPLATE)
    one_line(done, 2, "not a finite number")


def test_too_many_siblings_for_ulimit_n_is_one_line(tmp_path):
    done = subprocess.run(
        ["sh", "-c", 'ulimit -n 48 && exec "$@"', "sh", PY, "-m", "harness", "launch",
         "--siblings", "30", "--log-dir", str(tmp_path / "logs"), "--", PY, FAKE, "ok"],
        capture_output=True, text=True, timeout=120, check=False)
    one_line(done, 2, "RLIMIT_NOFILE (ulimit -n) 48 is too low")


def test_a_value_that_looks_like_markup_is_printed_as_text(tmp_path):
    scored = tmp_path / "scored.py"  # writes a score, so the summary names the best params
    scored.write_text("import json, os\njson.dump({'score': 1.0}, "
                      "open(os.environ['HARNESS_METRICS_OUT'], 'w'))\n")
    rows = [{"arg": "[/bold]"}, {"arg": "[red]x"}]
    done = harness("phase2", "run", "--grid", grid(tmp_path, rows), "--out",
                   str(tmp_path / "out"), "--progress", "lines", "--metric", "score",
                   "--", PY, str(scored), "{arg}")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "[/bold]" in done.stdout + done.stderr


def test_resume_with_a_value_python_calls_equal_is_refused(tmp_path):
    out = str(tmp_path / "out")
    first = harness("phase2", "run", "--grid", grid(tmp_path, [{"mode": "ok", "arg": 1}]),
                    "--out", out, *TEMPLATE)
    assert first.returncode == 0, first.stderr[-2000:]
    again = harness("phase2", "run", "--resume", "--grid",
                    grid(tmp_path, [{"mode": "ok", "arg": True}], "changed.json"),
                    "--out", out, *TEMPLATE)
    one_line(again, 2, "different grid")


# -- full disks, a second runner ------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs of this test's own (root mounts it), unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(where)],
                   check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_out_is_one_line_leaks_nothing_and_resume_finishes(tmp_path, small_disk):
    rows = [{"mode": "flood", "arg": "600000"}, *({"mode": "ok", "arg": i} for i in range(3))]
    out = small_disk / "out"
    before = mine()
    done = harness("phase2", "run", "--grid", grid(tmp_path, rows), "--out", str(out),
                   "--progress", "lines", *TEMPLATE)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "No space left on device" in done.stderr.splitlines()[-1]
    assert mine() == before  # the run's cgroups are gone
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = harness("phase2", "run", "--resume", "--grid", grid(tmp_path, rows), "--out",
                    str(out), "--progress", "lines", *TEMPLATE)
    assert again.returncode == 0, again.stderr[-3000:]
    lines = (out / "ledger.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines if line.strip().endswith("}")]
    assert sorted(set(keys)) == sorted(keys) and len(keys) == len(rows)


def test_a_full_log_dir_still_gives_an_outcome(tmp_path, small_disk):
    done = harness("launch", "--json", "--log-dir", str(small_disk / "logs"), "--", PY, FAKE,
                   "flood", "800000")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert any("outcome.json not written: No space left on device" in e
               for e in outcome["evidence"]), outcome["evidence"]


def test_a_second_runner_on_a_live_out_is_refused_and_nothing_runs_twice(tmp_path):
    rows = [{"mode": "sleep", "arg": "30"}, {"mode": "ok", "arg": "1"}]
    out = str(tmp_path / "out")
    args = ["phase2", "run", "--grid", grid(tmp_path, rows), "--out", out, "--progress",
            "lines", *TEMPLATE]
    first = subprocess.Popen([PY, "-m", "harness", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        lock = Path(out) / "run.lock"  # its pid is written once the flock is held
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = harness(*args[:2], "--resume", *args[2:])
        one_line(second, 2, f"in use by a live run (pid {first.pid})")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)


def test_resume_appends_to_the_decisions_of_the_first_run(tmp_path):
    rows = [{"mode": "ok", "arg": i} for i in range(2)]
    out = tmp_path / "out"
    assert harness("phase2", "run", "--grid", grid(tmp_path, rows), "--out", str(out),
                   "--max-evals", "1", *TEMPLATE).returncode == 0
    first = (out / "decisions.jsonl").read_text().splitlines()
    assert first
    assert harness("phase2", "run", "--resume", "--grid", grid(tmp_path, rows), "--out",
                   str(out), "--max-evals", "1", *TEMPLATE).returncode in (0, 2)
    again = harness("phase2", "run", "--resume", "--grid", grid(tmp_path, rows), "--out",
                    str(out), *TEMPLATE)
    assert (out / "decisions.jsonl").read_text().splitlines()[:len(first)] == first, \
        again.stderr[-2000:]


# -- huge logs --------------------------------------------------------------------------------

def test_the_log_cap_keeps_head_and_tail_and_says_what_it_dropped(tmp_path):
    done = harness("launch", "--json", "--log-cap", "1M", "--log-dir", str(tmp_path / "l"),
                   "--", PY, FAKE, "flood", "8000000")
    outcome = json.loads(done.stdout)
    assert outcome["verdict"] == "ok", outcome["evidence"]
    stdout = tmp_path / "l" / "stdout.log"
    assert stdout.stat().st_blocks * 512 < 2 << 20  # on disk: about the cap, not 8 MB
    assert any(e.startswith("log cap:") and "stdout.log" in e for e in outcome["evidence"])


def test_evidence_past_the_first_16_mib_is_found(tmp_path):
    script = tmp_path / "late.py"
    script.write_text(f"import os, sys\nsys.stderr.write('x' * 100 + '\\n' * 1)\n"
                      f"sys.stderr.write(('noise ' * 16 + '\\n') * 220_000)\n"
                      f"sys.stderr.write({TF_ABORT!r} + '\\n')\nsys.stderr.flush()\n"
                      "os.abort()\n")
    done = harness("launch", "--json", "--log-dir", str(tmp_path / "l"), "--", PY,
                   str(script))
    outcome = json.loads(done.stdout)
    assert (tmp_path / "l" / "stderr.log").stat().st_size > 20 << 20
    assert outcome["verdict"] == "thread_exhaustion", outcome["evidence"]


def test_new_events_are_read_from_where_the_last_read_ended(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "start", "t": 1}\n{"event": "work_sta')
    found, offset = ev.read_new(path, 0)
    assert [e["event"] for e in found] == ["start"] and offset == len('{"event": "start", '
                                                                      '"t": 1}\n')
    with open(path, "a") as f:
        f.write('rted", "t": 2}\n')
    found, offset = ev.read_new(path, offset)
    assert [e["event"] for e in found] == ["work_started"]
    assert ev.read_new(path, offset) == ([], offset)  # nothing new: nothing read


# -- the nonroot launch_error, explained ----------------------------------------------------

@pytest.mark.xdist_group("rlimit-nproc")  # nobody's processes: never beside those tests
def test_an_exec_refused_by_rlimit_nproc_is_thread_exhaustion(tmp_path):
    """uid nobody already runs two processes and may have one: the trampoline's switch to
    nobody succeeds, and the kernel refuses the exec with EAGAIN (checked at exec)."""
    nobody = pwd.getpwnam("nobody")
    holder = subprocess.Popen(["setpriv", f"--reuid={nobody.pw_uid}",
                               f"--regid={nobody.pw_gid}", "--clear-groups", "sh", "-c",
                               "sleep 60 & sleep 60"], start_new_session=True)
    try:
        time.sleep(0.5)
        trampoline = subprocess.run(
            [PY, "-m", "harness.host.limits", "--user", f"{nobody.pw_uid}:{nobody.pw_gid}",
             "--rlimit", "nproc=1", "--", "true"], capture_output=True, text=True,
            check=False, timeout=30)
        assert trampoline.returncode == 126
        assert "cannot exec 'true': Resource temporarily unavailable" in trampoline.stderr
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    files = LaunchFiles(tmp_path / "launch")
    files.reset()
    files.stderr.write_text(trampoline.stderr)
    found = classify(Observation(0, files), {"returncode": 126, "via_shell": False,
                                             "launch_error": None}, Observed(),
                     budget={"backend": "rlimit-nproc", "limit": 1}, limits={},
                     events_max_delta=0, gpu_expected=False)
    assert found.verdict == "thread_exhaustion", found.evidence
    assert found.exhausted and found.exhausted.startswith("RLIMIT_NPROC"), found.exhausted
    assert any("checked at exec" in e for e in found.evidence)
