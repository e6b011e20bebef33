"""Where attempts run, behind one contract (base.py): this host (local.py) or a Ray
cluster (ray/). `--executor NAME` imports harness.phase2.executors.NAME and takes its
`EXECUTOR`; a new executor (Slurm, k8s Jobs) is one module here and its name below.
Nothing is imported until a run names its executor (Ray's import alone takes 1.5 s)."""

from __future__ import annotations

import importlib

from harness.errors import InputError

NAMES = ("local", "ray")


def names() -> list[str]:
    return list(NAMES)


def load(name: str) -> type:
    """The Executor class called name (InputError names the known ones)."""
    if name not in NAMES:
        raise InputError(f"unknown executor {name!r}: use {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").EXECUTOR
