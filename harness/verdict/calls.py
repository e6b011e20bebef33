"""The in-parent method's calls as the outcome keeps them: read from calls.jsonl (the
launching parent wrote it, so it is untrusted like any child's file) and what grew from
call to call, for the evidence."""

from __future__ import annotations

from pathlib import Path

from harness import untrusted
from harness.verdict.verdicts import VERDICTS

MAX_CALLS_KEPT = 1000
_COUNTS = ("call", "exit", "threads", "fds")
_NUMBERS = ("duration_s", "rss_mb")


def _valid(record: dict) -> bool:
    counts = all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool)
                 for k in _COUNTS)
    numbers = all(untrusted.real_number(record.get(k)) for k in _NUMBERS)
    gpu = record.get("gpu_memory_mb")
    return counts and numbers and record.get("verdict") in VERDICTS and (
        gpu is None or untrusted.real_number(gpu))


def read_calls(path: Path) -> list[dict]:
    """The calls on record, in order; a line that is not one is left out."""
    if not path.exists():
        return []
    keys = (*_COUNTS, *_NUMBERS, "verdict", "gpu_memory_mb", "error")
    return [{k: record.get(k) for k in keys}
            for record in untrusted.iter_jsonl(path, "call")
            if _valid(record)][:MAX_CALLS_KEPT]


def growth(calls: list[dict]) -> list[str]:
    """What the process carried from call to call: per call, from the first to the last."""
    if len(calls) < 2:
        return []
    steps = len(calls) - 1
    first, last = calls[0], calls[-1]
    rss = (last["rss_mb"] - first["rss_mb"]) / steps
    threads = (last["threads"] - first["threads"]) / steps
    fds = (last["fds"] - first["fds"]) / steps
    line = (f"in-parent: {rss:+.0f} MB RSS, {threads:+.1f} threads and {fds:+.1f} open files "
            f"per call over {len(calls)} calls (after call 1: {first['rss_mb']:.0f} MB, "
            f"{first['threads']} threads)")
    if first.get("gpu_memory_mb") is not None and last.get("gpu_memory_mb") is not None:
        line += f", {(last['gpu_memory_mb'] - first['gpu_memory_mb']) / steps:+.0f} MB GPU"
    return [line]
