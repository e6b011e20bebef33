"""The home guard (tests/homeguard.py) fails a session that writes the harness's places
under the real home, and nothing else on the machine can turn it red. Each case runs pytest
itself with a home of its own as the "real" one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.homeguard import SANDBOX_ENV

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]  # where `tests.homeguard` imports from

EDITOR = textwrap.dedent("""
    import os, sys, time
    home = sys.argv[1]
    while True:  # an editor's atomic save: write a temp file, rename it over the real one
        with open(os.path.join(home, ".notes.tmp"), "w") as f:
            f.write(str(time.time()))
        os.replace(os.path.join(home, ".notes.tmp"), os.path.join(home, "notes.txt"))
        os.makedirs(os.path.join(home, ".cache", "pip"), exist_ok=True)
        time.sleep(0.3)
""")


def _run(pytester: pytest.Pytester, monkeypatch, body: str) -> pytest.RunResult:
    """pytest with the guard, in a process whose real home is pytester's directory."""
    monkeypatch.delenv(SANDBOX_ENV, raising=False)  # the inner session makes its own
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("REAL_HOME_OF_THIS_CASE", str(pytester.path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=body)
    return pytester.runpytest_subprocess("-p", "tests.homeguard", "-p", "no:cacheprovider",
                                         "-q")


def test_a_test_that_writes_the_plan_cache_under_the_real_home_fails_the_session(
        pytester, monkeypatch):
    result = _run(pytester, monkeypatch, textwrap.dedent("""
        import os, pathlib
        def test_writes_home():
            plans = pathlib.Path(os.environ["REAL_HOME_OF_THIS_CASE"], ".cache",
                                 "phase2-harness", "plans")
            plans.mkdir(parents=True)
            (plans / "entry.json").write_text("{}")
    """))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the suite wrote under the real home*phase2-harness*"])


def test_a_test_that_writes_its_own_home_passes(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, textwrap.dedent("""
        import os, pathlib
        def test_writes_sandbox():
            assert os.environ["HOME"] != os.environ["REAL_HOME_OF_THIS_CASE"]
            cache = pathlib.Path(os.environ["XDG_CACHE_HOME"], "phase2-harness")
            cache.mkdir(parents=True)
            (cache / "x").write_text("mine")
    """))
    assert result.ret == pytest.ExitCode.OK


def test_another_program_writing_the_home_meanwhile_does_not_fail_the_session(
        pytester, monkeypatch):
    editor = subprocess.Popen([sys.executable, "-c", EDITOR, str(pytester.path)])
    try:
        result = _run(pytester, monkeypatch, textwrap.dedent("""
            import time
            def test_slow():
                time.sleep(1.5)  # the editor saves ~5 times meanwhile
        """))
    finally:
        editor.kill()
        editor.wait()
    assert (pytester.path / "notes.txt").is_file()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
