"""Measure once, reuse everywhere: per-child thread peaks kept in the user's cache
directory, keyed by what decides a child's need.

The key is the command template (its parameters are still placeholders), the thread-cap
environment, the host's CPU count, the GPUs the command may use and the installed
TensorFlow version. A stale entry is found out the first time a child outgrows it:
the retry policy grows the need, and the run saves the new peak.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

from harness import jsonio, nvml
from harness.phase2.planning import cpus

CACHE_ENV = "HARNESS_PLAN_CACHE"  # a directory: overrides the user's cache dir (tests)


def directory() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("phase2-harness")) / "plans"


def _tensorflow() -> str | None:
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def key(template: list[str], caps: dict[str, str]) -> dict:
    with nvml.Nvml.open() as handle:
        gpus = handle.gpus() if handle.available else []
    visible = nvml.visible(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    return {"template": list(template), "caps": caps, "cpus": cpus(),
            "gpus": [g.uuid for g in visible], "tensorflow": _tensorflow()}


def _path(record: dict) -> Path:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    return directory() / f"{digest}.json"


def load(template: list[str], caps: dict[str, str]) -> int | None:
    """The peak measured earlier for this key on this host, or None."""
    record = key(template, caps)
    try:
        saved = json.loads(_path(record).read_text())
    except (OSError, ValueError):
        return None
    return int(saved["per_child_peak"]) if saved.get("key") == record else None


def save(template: list[str], caps: dict[str, str], peak: int) -> None:
    record = key(template, caps)
    try:
        directory().mkdir(parents=True, exist_ok=True)
        jsonio.write_json(_path(record), {"key": record, "per_child_peak": peak})
    except OSError:  # a read-only home: the run goes on without a cache
        pass
