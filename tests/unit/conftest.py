from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.launch import spec as launch
from harness.launch.command import Command
from harness.launch.condition import Condition

FAKE = Path(__file__).resolve().parent.parent / "fakes" / "child.py"


def fake(mode: str, arg: str = "") -> Command:
    """The fake child as a Python command (so the mp methods can run it in-process)."""
    return Command((sys.executable, str(FAKE), mode, *([arg] if arg else [])))


@pytest.fixture
def run_fake(tmp_path):
    """run_fake(mode, arg, method=..., condition=..., timeouts) -> list[Outcome]."""
    counter = iter(range(10_000))

    def run(mode: str, arg: str = "", method: str = "subprocess-pipes",
            condition: Condition | None = None, timeout_s: float = 60.0,
            stall_timeout_s: float = 3.0, command: Command | None = None):
        spec = launch.LaunchSpec(command or fake(mode, arg), method, condition or Condition(),
                                 tmp_path / f"{next(counter)}-{mode}-{method}", timeout_s,
                                 stall_timeout_s)
        return launch.run(spec)

    return run
