"""The command under test: argv + cwd + env additions, and how to observe it.

The default is the reference workload with the field's flags. A user's own
command ("foreign") is observed through the events file if it honours
HARNESS_EVENTS, else through --work-pattern / --done-pattern on its output.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import InputError

FIELD_ARGS: tuple[str, ...] = (
    "--mode", "search", "--cv_folds", "3", "--data_percentage", "100", "--verbosity", "0",
    "--resume_mode", "fresh", "--threshold_I", "17", "--threshold_P", "18",
    "--threshold_R", "19", "--device-mode", "multi", "--min-gpu-memory", "8.0",
)
WORKLOAD_MODULE = "harness.workload"
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")




@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    work_pattern: str | None = None
    done_pattern: str | None = None

    @property
    def is_reference(self) -> bool:
        return len(self.argv) >= 3 and self.argv[1:3] == ("-m", WORKLOAD_MODULE)

    def display(self) -> str:
        return shlex.join(self.argv)

    def with_flags(self, flags: tuple[str, ...] | list[str]) -> Command:
        """The reference workload with some flags set (replacing earlier values)."""
        argv = list(self.argv)
        it = iter(flags)
        for flag, value in zip(it, it, strict=False):  # pairs; a stray flag is ignored
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            else:
                argv += [flag, value]
        return replace(self, argv=tuple(argv))

    def validate(self) -> None:
        """Raise InputError for a command that would fail before it ever runs."""
        if not self.argv:
            raise InputError("missing command: nothing to launch")
        if self.cwd is not None and not Path(self.cwd).is_dir():
            raise InputError(f"bad cwd {self.cwd!r}: not a directory")
        exe = self.argv[0]
        if os.sep in exe:
            path = Path(self.cwd or ".", exe) if not os.path.isabs(exe) else Path(exe)
            if not path.is_file():
                raise InputError(f"command not found: {exe!r}")
            if not os.access(path, os.X_OK):
                raise InputError(f"command not executable: {exe!r}")
        elif shutil.which(exe) is None:
            raise InputError(f"command not found on PATH: {exe!r}")
        for name in ("work_pattern", "done_pattern"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise InputError(f"bad --{name.replace('_', '-')} {pattern!r}: {exc}") \
                        from None


def reference(python: str = sys.executable, extra: tuple[str, ...] = ()) -> Command:
    """The reference workload with the field's flags: what runs when no command is given."""
    return Command((python, "-m", WORKLOAD_MODULE, *FIELD_ARGS)).with_flags(extra)


def parse(text_or_argv: str | list[str], cwd: str | None = None,
          work_pattern: str | None = None, done_pattern: str | None = None) -> Command:
    argv = shlex.split(text_or_argv) if isinstance(text_or_argv, str) else list(text_or_argv)
    return Command(tuple(argv), cwd, {}, work_pattern, done_pattern)


@dataclass(frozen=True)
class PythonTarget:
    """What a multiprocessing child runs in-process: a module or a script, with its argv."""

    kind: str  # "module" | "script"
    name: str
    args: tuple[str, ...]


def python_target(argv: tuple[str, ...]) -> PythonTarget | None:
    """`python -m mod ...`, `python script.py ...` or `./script.py ...`; None if not Python."""
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if _PYTHON_RE.match(exe):
        if len(argv) >= 3 and argv[1] == "-m":
            return PythonTarget("module", argv[2], tuple(argv[3:]))
        if len(argv) >= 2 and argv[1].endswith(".py"):
            return PythonTarget("script", argv[1], tuple(argv[2:]))
        return None
    if exe.endswith(".py"):
        return PythonTarget("script", argv[0], tuple(argv[1:]))
    return None
