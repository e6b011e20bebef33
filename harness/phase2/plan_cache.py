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

from harness import jsonio
from harness.host import nvml
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


def _read(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _entry(template: list[str], caps: dict[str, str]) -> dict:
    """The saved entry for this key on this host, or {}."""
    record = key(template, caps)
    saved = _read(_path(record))
    return saved if saved.get("key") == record else {}


def load(template: list[str], caps: dict[str, str]) -> int | None:
    """The peak measured earlier for this key on this host, or None."""
    peak = _entry(template, caps).get("per_child_peak")
    return int(peak) if peak else None


def durations(template: list[str], caps: dict[str, str]) -> dict[str, float]:
    """Evaluation key -> seconds its last ok run took, for this key on this host."""
    return dict(_entry(template, caps).get("durations") or {})


def save(template: list[str], caps: dict[str, str], peak: int,
         took: dict[str, float] | None = None) -> None:
    """Keep the peak, and the durations of this run's ok evaluations beside earlier ones."""
    record = key(template, caps)
    known = {**durations(template, caps), **(took or {})}
    try:
        directory().mkdir(parents=True, exist_ok=True)
        jsonio.write_json(_path(record), {"key": record, "per_child_peak": peak,
                                          "durations": known})
    except OSError:  # a read-only home: the run goes on without a cache
        pass
