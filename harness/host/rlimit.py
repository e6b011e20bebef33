"""The rlimits the harness sets and reports, by the names its options use. Stdlib only."""

from __future__ import annotations

import resource

RLIMITS = {
    "nproc": resource.RLIMIT_NPROC,
    "as": resource.RLIMIT_AS,
    "stack": resource.RLIMIT_STACK,
    "nofile": resource.RLIMIT_NOFILE,
}


def finite(value: int) -> int | None:
    """None for RLIM_INFINITY (unlimited), else the value."""
    return None if value == resource.RLIM_INFINITY else value


def current() -> dict[str, tuple[int | None, int | None]]:
    """name -> (soft, hard) of this process, None for unlimited."""
    return {name: (finite(soft), finite(hard))
            for name, (soft, hard) in ((n, resource.getrlimit(r)) for n, r in RLIMITS.items())}
