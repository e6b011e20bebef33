"""A task: one evaluation of the grid across its attempts; an attempt that ended, as
every executor reports it; and where each attempt's files go."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.launch.command import Command
from harness.phase2.grid import Evaluation
from harness.supervise.files import LaunchFiles
from harness.verdict.outcome import Outcome
from harness.verdict.verdicts import Verdict


@dataclass(frozen=True)
class Guess:
    """An attempt that died within a grant the runner guessed: its mistake, not an
    attempt of the evaluation's (the ledger keeps these)."""

    attempt: int
    grant: int | None
    guess: str  # what the grant was based on
    shown: int  # the need the child showed at least

    def record(self) -> dict:
        return {"attempt": self.attempt, "grant": self.grant, "guess": self.guess,
                "shown": self.shown}


@dataclass
class Task:
    evaluation: Evaluation
    command: Command
    attempts: int = 0
    not_before: float = 0.0  # monotonic: a retry waits out its back-off
    verdicts: list[str] = field(default_factory=list)
    started_at: float = 0.0  # wall clock, of the latest attempt
    queued_at: float = field(default_factory=time.time)  # wall clock it became ready
    queued_s: float = 0.0  # waiting to start, over all its attempts
    # Attempts that died within a grant the runner guessed: its mistake, not an attempt;
    # the next one runs where nothing is guessed for it.
    guesses: list[Guess] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the policy's word on its attempts
    # Asked once, when the task is first offered to an executor: False drops it (a Pool's
    # future that was cancelled while queued). None: always goes.
    gate: Callable[[], bool] | None = None
    pruned: str | None = None  # why a search stopped it: final, never retried
    stop_verdict: Verdict = Verdict.PRUNED  # its verdict then (error: its callback raised)

    @property
    def spent(self) -> int:
        """Attempts that count against the evaluation's: its own failures only."""
        return self.attempts - len(self.guesses)

    def began(self, at: float | None = None) -> None:
        """An attempt started (at: wall clock, where a node says when)."""
        self.started_at = at or time.time()
        self.queued_s += max(0.0, self.started_at - self.queued_at)

    def requeue(self, delay_s: float) -> None:
        """Ready again after delay_s (a retry's back-off)."""
        self.not_before = time.monotonic() + delay_s
        self.queued_at = time.time() + delay_s


@dataclass
class Attempt:
    """One attempt of one evaluation that ended, as any executor reports it."""

    task: Task
    outcome: Outcome
    node: str  # the host that ran it
    grant: int | None = None  # tasks the executor gave this child, where it knows
    # Why this child could not have been given more (it ran alone on the budget, it had
    # the largest node): an exhaustion then is final, not a reason to retry.
    at_most: str | None = None
    basis: str = ""  # what the runner based its grant on (Need.basis())


def attempt_path(root: Path, attempt: int) -> Path:
    """Where attempt N of one evaluation keeps its files, under that evaluation's root."""
    return root / f"attempt-{attempt}"


def attempt_dir(root: Path, attempt: int) -> LaunchFiles:
    """attempt-N, skipping dirs a killed earlier run left (their logs are evidence)."""
    n = attempt
    while attempt_path(root, n).exists():
        n += 1
    return LaunchFiles(attempt_path(root, n))
