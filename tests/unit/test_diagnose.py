"""`harness diagnose`: the same judgement on logs from a run that did not go through the
harness, on a file, a directory and stdin, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .exhaustion_corpus import NEAR, REAL

NOISE = "2026-11-30 12:00:00 INFO epoch 3/10 loss=0.412 acc=0.88\n"


def diagnose(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "diagnose", *args],
                          capture_output=True, text=True, input=stdin, check=False,
                          timeout=120, env={**os.environ, "COLUMNS": "100"})


def _log(path: Path, message: str | None, before: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NOISE * before + (message + "\n" if message else "") + NOISE * 5)
    return path


def test_a_file_names_the_line_the_runtime_and_what_ran_out(tmp_path):
    go = next(m for m in REAL if "errno=11" in m.text and "newosproc" in m.text)
    log = _log(tmp_path / "job.log", go.text)
    done = diagnose(str(log), "--json")
    assert done.returncode == 1, done.stderr
    [found] = json.loads(done.stdout)["files"]
    assert found["verdict"] == "thread_exhaustion" and found["errno"] == "EAGAIN"
    assert found["matches"][0]["line"] == 41  # after 40 lines of noise
    assert found["runtimes"] == ["Go runtime"]
    assert "task limit" in found["suggests"]
    assert json.loads(done.stdout)["host"]["fix"]  # where it happened: this host's limit
    table = diagnose(str(log))  # for people: a row per finding, the line, the fix here
    assert table.returncode == 1
    assert "41: runtime: failed" in table.stdout and "EAGAIN" in table.stdout
    assert "the binding limit is" in table.stdout


def test_a_directory_is_walked_without_following_links_or_reading_binaries(tmp_path):
    out = tmp_path / "out" / "evals"
    _log(out / "0000-aaaa" / "attempt-1" / "stderr.log", REAL[0].text)
    _log(out / "0001-bbbb" / "attempt-1" / "stderr.log", NEAR[0].text)
    # a core file: an ELF header and binary bytes, then text it happened to hold
    (out / "0001-bbbb" / "attempt-1" / "core").write_bytes(
        b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8 + REAL[0].text.encode())
    elsewhere = _log(tmp_path / "elsewhere.log", REAL[1].text)
    (out / "0002-link.log").symlink_to(elsewhere)
    done = diagnose(str(tmp_path / "out"), "--json")
    assert done.returncode == 1, done.stderr
    files = {Path(f["path"]).name: f for f in json.loads(done.stdout)["files"]}
    assert files["stderr.log"]["verdict"] in ("thread_exhaustion", None)
    found = [f for f in json.loads(done.stdout)["files"] if f["verdict"]]
    assert [Path(f["path"]).parent.parent.name for f in found] == ["0000-aaaa"]
    assert files["core"]["skipped"] == "binary"
    assert "not a regular file" in files["0002-link.log"]["skipped"]


def test_stdin_and_exit_codes(tmp_path):
    clean = diagnose("-", stdin=NOISE * 10 + NEAR[5].text + "\n")
    assert clean.returncode == 0, clean.stdout
    hit = diagnose("-", "--json", stdin=NOISE + "bash: fork: retry: Resource temporarily "
                   "unavailable\n")
    assert hit.returncode == 1
    assert json.loads(hit.stdout)["files"][0]["path"] == "<stdin>"
    bad = diagnose(str(tmp_path / "missing.log"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "harness diagnose: error: no such file" in bad.stderr


def test_a_line_longer_than_memory_should_hold_is_read_in_pieces(tmp_path):
    log = tmp_path / "one-line.log"
    log.write_text("x" * (3 << 20) + " pthread_create failed: Resource temporarily unavailable\n")
    done = diagnose(str(log), "--json")
    assert done.returncode == 1, done.stderr
