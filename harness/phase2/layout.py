"""Every path a Phase 2 run keeps under OUT, in one place: the files the runner writes and
where each evaluation's attempts keep their logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "run.json"  # what this run is: template, grid, strategy
LEDGER_FILE = "ledger.jsonl"  # one fsynced line per finished evaluation
RESULTS_FILE = "results.json"  # every evaluation and the summary, an atomic snapshot
DECISIONS_FILE = "decisions.jsonl"  # the runner's decisions, streamed
PLAN_FILE = "plan.json"  # one child's measured peak for this command
PLAN_PROBE = "plan-probe"  # `phase2 plan`'s probe launch
EVALS = "evals"  # evals/KEY/attempt-N/: each attempt's launch files
LIVE = "live"  # live/KEY.N.jsonl: a cluster attempt's events as its node pushes them
REPORT_FILE = "report.html"
MARK = ".harness"  # the harness made this directory
LOCK_FILE = "run.lock"  # flock'd by the run using OUT; holds its pid
ATTEMPT_GLOB = "attempt-*"
# What the harness itself puts in an --out before a run does (`phase2 plan --out OUT`).
HARNESS_MADE = frozenset({RUN_FILE, LEDGER_FILE, RESULTS_FILE, DECISIONS_FILE, PLAN_FILE,
                          PLAN_PROBE, EVALS, LIVE, REPORT_FILE, MARK, LOCK_FILE})


@dataclass(frozen=True)
class Layout:
    out: Path

    @property
    def run(self) -> Path:
        return self.out / RUN_FILE

    @property
    def ledger(self) -> Path:
        return self.out / LEDGER_FILE

    @property
    def results(self) -> Path:
        return self.out / RESULTS_FILE

    @property
    def decisions(self) -> Path:
        return self.out / DECISIONS_FILE

    @property
    def plan(self) -> Path:
        return self.out / PLAN_FILE

    @property
    def plan_probe(self) -> Path:
        return self.out / PLAN_PROBE

    @property
    def evals(self) -> Path:
        return self.out / EVALS

    @property
    def live(self) -> Path:
        return self.out / LIVE

    @property
    def lock(self) -> Path:
        return self.out / LOCK_FILE

    @property
    def report(self) -> Path:
        return self.out / REPORT_FILE

    def evaluation(self, key: str) -> Path:
        """Where every attempt of one evaluation keeps its files."""
        return self.evals / key
