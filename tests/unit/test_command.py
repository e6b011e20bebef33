from __future__ import annotations

import sys

import pytest

from harness.errors import InputError
from harness.launch import command
from harness.launch.command import Command, python_target


def test_reference_is_the_field_command():
    ref = command.reference()
    assert ref.is_reference
    assert ref.argv[1:3] == ("-m", "harness.workload")
    assert "--threshold_I" in ref.argv and "--min-gpu-memory" in ref.argv


def test_with_flags_replaces_and_appends():
    ref = command.reference().with_flags(("--verbosity", "2", "--host-cores", "32"))
    argv = list(ref.argv)
    assert argv[argv.index("--verbosity") + 1] == "2"
    assert argv.count("--verbosity") == 1
    assert argv[-2:] == ["--host-cores", "32"]


@pytest.mark.parametrize(("argv", "expected"), [
    (("python", "-m", "pkg.mod", "--x"), ("module", "pkg.mod", ("--x",))),
    (("/venv/bin/python3.11", "src/main.py", "-a"), ("script", "src/main.py", ("-a",))),
    (("./train.py", "--fast"), ("script", "./train.py", ("--fast",))),
    (("bash", "run.sh"), None),
    (("python", "-c", "print(1)"), None),
])
def test_python_target(argv, expected):
    target = python_target(argv)
    assert (None if target is None else (target.kind, target.name, target.args)) == expected


@pytest.mark.parametrize(("cmd", "message"), [
    (Command(()), "missing command"),
    (Command(("/nonexistent/bin",)), "command not found"),
    (Command(("no-such-program-xyz",)), "not found on PATH"),
    (Command((sys.executable,), cwd="/nonexistent"), "bad cwd"),
    (Command(("true",), done_pattern="("), "bad --done-pattern"),
])
def test_validate_names_the_problem(cmd, message):
    with pytest.raises(InputError, match=message):
        cmd.validate()


def test_validate_refuses_a_non_executable_file(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    script.chmod(0o644)
    cmd = Command((str(script),))
    with pytest.raises(InputError, match="not executable"):
        cmd.validate()
