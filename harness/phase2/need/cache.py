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
import stat
import sys
from pathlib import Path

from harness import jsonio, untrusted
from harness.host import nvml
from harness.phase2.need import plan as planning
from harness.phase2.need.caps import Recipe, cpus

CACHE_ENV = "HARNESS_PLAN_CACHE"  # a directory: overrides the user's cache dir (tests)

KEPT_DURATIONS = 1000  # the longest ok evaluations' durations an entry keeps


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


def key(recipe: Recipe) -> dict:
    with nvml.Nvml.open() as handle:
        gpus = handle.gpus() if handle.available else []
    visible = nvml.visible(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    return {"template": list(recipe.template), "caps": recipe.caps, "cpus": cpus(),
            "gpus": [g.uuid for g in visible], "tensorflow": _tensorflow()}


def _path(record: dict) -> Path:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    return directory() / f"{digest}.json"


_warned: set[Path] = set()


def _skip(path: Path, why: str) -> dict:
    """A bad entry is no entry: one warning naming it (once per run), then the run goes on
    as if it were not there."""
    if path not in _warned:
        _warned.add(path)
        what = "the plan cache" if path == directory() else "plan cache entry"
        sys.stderr.write(f"harness: warning: ignoring {what} {path}: {why}\n")
    return {}


def _problem(saved: dict) -> str | None:
    if not planning.valid_peak(saved.get("per_child_peak")):
        return f"per_child_peak {str(saved.get('per_child_peak'))[:40]!r} is not a task count"
    took = saved.get("durations", {})
    if not isinstance(took, dict) or not all(
            isinstance(k, str) and untrusted.real_number(v) and v >= 0 for k, v in took.items()):
        return "durations is not a table of evaluation -> seconds"
    return None


def distrust(path: Path) -> str | None:
    """Why the cache directory is not this user's to read and write, or None. As pip does
    with its cache: no component may be a link another user owns (root would write
    through it, into whatever it points at), and the deepest one that exists must be
    this user's own."""
    uid = os.geteuid()
    chain = [path, *path.parents]
    for part in chain:
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"{part} cannot be checked ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in (uid, 0):
            return f"{part} is a link owned by uid {st.st_uid}, not by you (uid {uid})"
    existing = next((p for p in chain if p.exists()), None)
    if existing is None:
        return None
    owner = existing.stat().st_uid
    if owner not in (uid, 0) or (owner == 0 and uid != 0 and existing == path):
        return f"{existing} is owned by uid {owner}, not by you (uid {uid})"
    return None


def _usable() -> bool:
    """The cache directory is this user's: otherwise one warning, and no cache."""
    where = directory()
    why = distrust(where)
    if why is not None:
        _skip(where, f"not used: {why}")
    return why is None


def _entry(recipe: Recipe) -> dict:
    """The saved entry for this key on this host, or {} (none, another key's, or bad)."""
    if not _usable():
        return {}
    record = key(recipe)
    path = _path(record)
    if not path.exists() and not path.is_symlink():
        return {}
    saved = untrusted.read_json_object(path)
    if saved is None:
        return _skip(path, "not a JSON object")
    if saved.get("key") != record:
        return {}
    why = _problem(saved)
    return _skip(path, why) if why else saved


def load(recipe: Recipe) -> int | None:
    """The peak measured earlier for this key on this host, or None."""
    return _entry(recipe).get("per_child_peak")


def durations(recipe: Recipe) -> tuple[dict[str, float], float | None]:
    """(evaluation key -> seconds its last ok run took, for the longest ones; the mean of
    every ok evaluation), for this key on this host."""
    entry = _entry(recipe)
    mean = entry.get("mean_s")
    return dict(entry.get("durations") or {}), mean if untrusted.real_number(mean) else None


def save(recipe: Recipe, peak: int,
         took: dict[str, float] | None = None, mean_s: float | None = None) -> None:
    """Keep the peak, the durations of the longest ok evaluations (this run's beside earlier
    ones, KEPT_DURATIONS at most: the entry stays small for a grid of any size) and their
    mean."""
    record = key(recipe)
    known, earlier_mean = durations(recipe)
    known.update(took or {})
    longest = dict(sorted(known.items(), key=lambda kv: -kv[1])[:KEPT_DURATIONS])
    entry = {"key": record, "per_child_peak": peak, "durations": longest,
             "mean_s": mean_s if mean_s is not None else earlier_mean}
    if not _usable():
        return
    try:
        directory().mkdir(parents=True, exist_ok=True)
        jsonio.write_json(_path(record), entry)
    except OSError:  # a read-only home: the run goes on without a cache
        pass
