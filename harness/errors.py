"""One error family: every error the harness raises on purpose.

`InputError` (a `ValueError`): bad input, a flag, a file or a command, refused before
anything starts. `HostError`: this host cannot do what was asked (a budget it cannot
enforce, a cgroup it cannot make or delegate), said with what to do. The CLI maps both to
one line on stderr and exit 2, in one place (`harness/cli/main.py`); anything else that
escapes is a bug and shows its traceback. Stdlib only: the trampoline imports it.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An error the harness raises on purpose, with a message for people."""


class InputError(HarnessError, ValueError):
    """Bad input, refused before anything starts: exit 2."""


class HostError(HarnessError):
    """This host cannot do what was asked (budgets, cgroups, delegation): exit 2, before
    anything starts, with what to do."""
