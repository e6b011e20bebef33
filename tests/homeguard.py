"""The suite never writes the user's home: it runs with HOME and the XDG dirs in a sandbox,
and fails if anything appeared or changed in the places under the *real* home that the
harness and the programs it runs would write (WATCHED).

Only those places are watched, never the whole home: an editor saving a file, a shell's
history, pip's cache or a second checkout's build are other programs' business and must
not turn the suite red on a developer's machine (the old whole-home check did). A test
that writes one of them (the plan cache under ~/.cache, say) still fails the session,
which tests/unit/test_homeguard.py checks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SANDBOX_ENV = "HARNESS_TEST_HOME"  # set by the process that made the sandbox (xdist workers
# inherit it)
XDG_DIRS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
# Under the real home, what the harness (its plan cache: platformdirs' user dirs), the
# reference workload (TensorFlow/Keras), matplotlib, Ray and Chromium write when HOME or
# XDG_* lead them there.
WATCHED = (".cache/phase2-harness", ".config/phase2-harness", ".local/share/phase2-harness",
           ".local/state/phase2-harness", ".keras", ".cache/matplotlib", ".config/matplotlib",
           ".ray", ".config/chromium", ".cache/chromium", ".nv")
_REAL = pytest.StashKey[tuple]()

Snapshot = dict[str, tuple[int, int]]  # path -> (mtime_ns, size)


def _toolchain_homes(home: Path) -> dict[str, str]:
    """Toolchains found through HOME (rustup's cargo/rustc, pyenv's shims) keep working:
    they are read, never written, by the tests that need them."""
    found = {"RUSTUP_HOME": home / ".rustup", "CARGO_HOME": home / ".cargo",
             "PYENV_ROOT": home / ".pyenv"}
    return {k: str(v) for k, v in found.items() if k not in os.environ and v.is_dir()}


def snapshot(home: Path) -> Snapshot:
    """Every file and directory under the watched places, with its mtime and size; links are
    listed, not followed."""
    seen: Snapshot = {}
    for place in WATCHED:
        for root, dirs, files in os.walk(home / place):
            for name in (root, *(os.path.join(root, f) for f in files + dirs)):
                try:
                    st = os.lstat(name)
                except OSError:
                    continue
                seen[name] = (st.st_mtime_ns, st.st_size)
    return seen


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths made, removed or rewritten between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(SANDBOX_ENV):  # an xdist worker: its controller made the sandbox
        return
    real = Path.home().resolve()
    sandbox = Path(tempfile.mkdtemp(prefix="harness-test-home-"))
    os.environ.update(_toolchain_homes(real))
    os.environ.update({SANDBOX_ENV: str(sandbox), "HOME": str(sandbox),
                       "MPLCONFIGDIR": str(sandbox / "matplotlib")})  # its font cache once
    for name in XDG_DIRS:
        os.environ[name] = str(sandbox / name.lower())
    config.stash[_REAL] = (real, snapshot(real), sandbox)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _REAL in config.stash:
        shutil.rmtree(config.stash[_REAL][2], ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REAL not in session.config.stash:
        return
    real, before, _ = session.config.stash[_REAL]
    wrote = changed(before, snapshot(real))
    if wrote:
        session.config.get_terminal_writer().line(
            f"the suite wrote under the real home {real} (tests must use their tmp dir): "
            + ", ".join(wrote[:10]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _own_state(tmp_path_factory, monkeypatch):
    """Each test starts with an empty plan cache and XDG dirs of its own: a peak cached by
    one test must not change another's admission."""
    from harness.phase2.need.cache import CACHE_ENV

    mine = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(CACHE_ENV, str(mine / "plan-cache"))
    for name in XDG_DIRS:
        monkeypatch.setenv(name, str(mine / name.lower()))
