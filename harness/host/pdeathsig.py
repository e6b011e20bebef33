"""Die with the parent: PR_SET_PDEATHSIG for launching parents and trampolines. Stdlib only.

The kernel clears the death signal when the process changes its credentials
(setuid/setgid) and keeps it across exec, so set it after any uid change.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int = 0) -> bool:
    """SIGKILL this process when its parent dies. False when expected_parent (non-zero) is
    no longer the parent: it died before the death signal was armed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return not expected_parent or os.getppid() == expected_parent
