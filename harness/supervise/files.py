"""The log-file layout of one launch: nothing is lost, everything in one directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    def parent_spec(self) -> Path:
        return self.dir / "parent-spec.json"

    def progress_files(self) -> tuple[Path, ...]:
        """Files whose growth counts as progress."""
        return self.events, self.stdout, self.stderr

    def reset(self) -> None:
        """Empty logs and no leftovers of an earlier launch in the same directory."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in (self.events, self.metrics, self.stacks, self.parent_result,
                      self.outcome, self.samples):
            stale.unlink(missing_ok=True)
        self.stdout.write_bytes(b"")
        self.stderr.write_bytes(b"")
