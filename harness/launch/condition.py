"""A condition: everything about a launch that is controlled, apart from the method.

Limits (task budget, address space, stack, open files), how many siblings start
together and share the budget, the launching parent's state (TensorFlow not
loaded / imported / initialised), environment pollution, and workload flags
that change its behaviour (output volume, host size).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import asdict, dataclass, field

from harness.errors import InputError
from harness.host.limits import Limits
from harness.launch.defaults import PARENT_TF_STATES

ENV_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class Condition:
    name: str = "custom"
    limits: Limits = field(default_factory=Limits)
    siblings: int = 1
    parent_tf: str = "none"
    env: dict[str, str] = field(default_factory=dict)  # set in the launching parent
    unset: tuple[str, ...] = ()  # removed from the launching parent's environment
    workload_flags: tuple[str, ...] = ()  # applied to the reference workload only
    run_as: str | None = None  # user the child runs as (root only): exercises RLIMIT_NPROC
    budget_backend: str = "auto"

    def __post_init__(self) -> None:
        if self.parent_tf not in PARENT_TF_STATES:
            raise InputError(f"bad parent TF state {self.parent_tf!r}: "
                             f"use one of {', '.join(PARENT_TF_STATES)}")
        if self.siblings < 1:
            raise InputError(f"bad siblings {self.siblings!r}: must be at least 1")
        for key in (*self.env, *self.unset):
            if not key or not set(key) <= ENV_NAME_CHARS or key[0].isdigit():
                raise InputError(f"bad environment variable name {key!r}")

    def parent_env(self) -> dict[str, str]:
        """The environment a launching parent gets: this process's, polluted as asked."""
        env = {k: v for k, v in os.environ.items() if k not in self.unset}
        env.update(self.env)
        return env

    def child_ids(self) -> tuple[int, int] | None:
        """(uid, gid) of run_as, None to keep the launcher's user."""
        if self.run_as is None:
            return None
        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            raise InputError(f"bad --run-as {self.run_as!r}: no such user") from None
        return entry.pw_uid, entry.pw_gid

    def record(self) -> dict:
        return asdict(self)
