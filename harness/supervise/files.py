"""The log-file layout of one launch: nothing is lost, everything in one directory.

The directory is the harness's. Where the child runs as another user (--run-as) it may
create files there (its events, metrics and stack dumps) but, the directory being
sticky and root's, never replace or remove one of the harness's: it cannot plant a link
where the harness writes. Everything the harness reads there it reads as untrusted
(harness/untrusted.py).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import untrusted

MARKER = ".harness"  # says: the harness made this directory, it may empty it again


@dataclass(frozen=True)
class LaunchFiles:
    """Where one launch keeps its output, events, metrics, stacks and outcome."""

    dir: Path

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @property
    def events(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def stacks(self) -> Path:
        return self.dir / "stacks.txt"

    @property
    def parent_log(self) -> Path:
        return self.dir / "parent.log"

    @property
    def parent_result(self) -> Path:
        return self.dir / "parent.json"

    @property
    def outcome(self) -> Path:
        return self.dir / "outcome.json"

    @property
    def samples(self) -> Path:
        return self.dir / "samples.jsonl"

    @property
    def calls(self) -> Path:
        """The in-parent method's calls, one JSON line each as it ends."""
        return self.dir / "calls.jsonl"

    @property
    def parent_spec(self) -> Path:
        return self.dir / "parent-spec.json"

    def progress_files(self) -> tuple[Path, ...]:
        """Files whose growth counts as progress."""
        return self.events, self.stdout, self.stderr

    def reset(self, user: tuple[int, int] | None = None) -> None:
        """A fresh directory: an earlier launch's files (whatever a child left there,
        links included) are removed without following anything. The files the harness
        writes are made now, its own; a child running as `user` may write only its
        events and stack dumps, and create its metrics."""
        if self.dir.is_symlink():
            self.dir.unlink()
        elif self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        mine = (self.stdout, self.stderr, self.samples, self.parent_log, self.parent_result,
                Path(self.dir, MARKER))
        for path in mine:
            os.close(untrusted.create_exclusive(path))
        if user is None:
            for path in (self.events, self.stacks):
                os.close(untrusted.create_exclusive(path))
            return
        # root's, the child's group may add entries but not remove or replace others'
        os.chown(self.dir, 0, user[1], follow_symlinks=False)
        os.chmod(self.dir, 0o1770)
        for path in (self.events, self.stacks):
            fd = untrusted.create_exclusive(path, 0o660)
            os.fchown(fd, 0, user[1])
            os.fchmod(fd, 0o660)
            os.close(fd)
