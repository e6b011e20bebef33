"""The Pool: the runner as a `concurrent.futures.Executor` any search can drive.

`submit(params, on_report=...)` returns a Future of an `Evaluated`; the evaluation is
admitted by this command's measured need, runs under a grant of its own, is retried only
for a resource death (a guess-death costs no attempt), lands in the ledger under OUT and
teaches the plan cache: the same engine as `run()`, which is a client of the Pool that
hands it a whole grid. A child's reports (`{"event": "report", "step": N, "metrics": {...}}`
in $HARNESS_EVENTS) reach `on_report(step, metrics)` as they are written; a truthy answer
stops that evaluation's whole tree (verdict `pruned`, final, never retried).

The engine (one schedule loop over one executor) runs in a thread of the Pool's for a
search, and in the caller's thread for `run()` (so Ctrl-C stops a run as before).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

from harness.phase2 import grid as grids
from harness.phase2.executors.base import Attempt
from harness.phase2.executors.base import Executor as RunsAttempts
from harness.phase2.layout import Layout
from harness.phase2.need.caps import Recipe
from harness.phase2.need.estimate import Need
from harness.phase2.options import RunOptions
from harness.phase2.prepare import prepare, prepare_need, remember, tally_of
from harness.phase2.record.evaluated import Evaluated, digest
from harness.phase2.record.ledger import Ledger
from harness.phase2.record.row import record
from harness.phase2.record.snapshots import Snapshots, Sources
from harness.phase2.schedule.decisions import DecisionLog
from harness.phase2.schedule.loop import Hooks, Queue, schedule
from harness.phase2.schedule.retry import RetryPolicy
from harness.phase2.schedule.task import Task
from harness.phase2.strategy import strategy_of
from harness.phase2.view.progress import Reporter
from harness.verdict.verdicts import Verdict
from harness.workload import events as ev

OnReport = Callable[[int, dict], object]
MAX_REPORTS = 10_000  # kept per evaluation; a child that reports more is not followed


@dataclass
class _Live:
    """What the engine follows of one submitted evaluation."""

    future: Future
    task: Task
    on_report: OnReport | None
    reports: list[tuple[int, dict]] = field(default_factory=list)
    offset: int = 0
    attempt: int = 0  # whose events the offset is into
    malformed: int = 0


class Pool(Executor):
    """The runner for any search: submit() evaluations, get futures."""

    def __init__(self, template: list[str] | None, opts: RunOptions, *,
                 grid: list[dict] | None = None, kind: type[RunsAttempts] | None = None,
                 render: Callable[[Path, dict, list[tuple[float, str]]], None] | None = None
                 ) -> None:
        """grid: a whole grid (run()); None: a search's submissions, numbered as they
        come. Nothing launches until a submission; OUT is checked and locked here."""
        self.template, self.evaluations, kind = prepare(template, grid, opts, kind,
                                                        search=grid is None)
        self.opts, self.search = opts, grid is None
        self.strategy = strategy_of(opts.strategy)
        self.need, self.log = Need(), DecisionLog()
        self.policy = RetryPolicy(retries=self.strategy.retries, log=self.log)
        self._stack = contextlib.ExitStack()
        try:
            self._open(kind, render)
        except BaseException:
            self._stack.close()
            raise
        self._live: dict[int, _Live] = {}
        self._base = self.ledger.size  # a resumed search's evaluations are numbered after
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.interrupted: str | None = None

    def _open(self, kind: type[RunsAttempts], render) -> None:
        layout = Layout(Path(self.opts.out))
        self.executor = self._stack.enter_context(
            kind.open(self.opts, self.template, self.need, self.log))
        identity = {"template": self.template, "grid": self.evaluations.params,
                    "strategy": self.opts.strategy}
        self.ledger = Ledger.open(layout.out, identity, self.opts.resume)
        self._stack.callback(self.ledger.close)
        self.log.stream_to(layout.decisions, keep=self.opts.resume)
        self.tally = tally_of(self.ledger, self.opts)
        self.recipe = Recipe(self.template, self.executor.caps)
        if self.strategy.measures:
            prepare_need(self.need, self.log, self.opts, self.recipe, self.tally)
        self._submitted: list[grids.Evaluation] = []  # a search's, so far: what it shows
        shown = self._submitted if self.search else self.evaluations
        self.snaps = Snapshots(self.ledger, self.tally, shown, strategy=self.opts.strategy,
                               sources=Sources(self.executor, self.need, self.log),
                               render=render or _no_render)
        self.queue = Queue()
        self.queue.open = self.search
        self._done = {digest(row["params"]): row for row in self.ledger.rows()} \
            if self.search and self.opts.resume else {}
        self.report: Reporter | None = None  # run()'s progress; a search prints nothing

    # -- what a search calls ----------------------------------------------------------

    def submit(self, params: dict, /, on_report: OnReport | None = None,  # type: ignore[override]
               **_: object) -> Future:
        """One evaluation of these params; a Future of its `Evaluated`. Params that do not
        fill the template are InputError here, and nothing launches."""
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        grids.validate([params], "params")
        grids.check(self.template, [params])
        if (row := self._done.get(digest(params))) is not None:  # --resume knows it
            done: Future = Future()
            done.set_result(Evaluated.of(row))
            return done
        with self._lock:
            evaluation = grids.Evaluation(self._base + len(self._submitted), params)
            self._submitted.append(evaluation)
        future = self.enqueue(evaluation, on_report)
        self._ensure_engine()
        return future

    def free_slots(self) -> int:
        """How many evaluations could start now: ask a search for that many more."""
        return max(0, self.executor.room() - len(self.queue))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions; with cancel_futures, queued ones are cancelled and running
        ones stopped (whole trees killed, nothing left behind); then the results."""
        if self._closed:
            return
        self._closed = True
        if cancel_futures:
            self.stop("the pool was shut down (cancel_futures)")
        self.queue.open = False
        if self._thread is not None and wait:
            self._thread.join()
        if wait:
            self.finish()

    # -- the engine ----------------------------------------------------------------------

    def enqueue(self, evaluation: grids.Evaluation, on_report: OnReport | None) -> Future:
        """A task for this evaluation, gated by its future (cancelled while queued: it
        never starts)."""
        future: Future = Future()
        self.queue.add(self.task_of(evaluation, on_report, future))
        return future

    def task_of(self, evaluation: grids.Evaluation, on_report: OnReport | None = None,
                future: Future | None = None) -> Task:
        """The task of one evaluation; followed (reports, a future) only where someone
        listens: a grid of 100,000 without a pruning rule holds no future at all."""
        task = Task(evaluation, grids.render(self.template, evaluation))
        if future is not None or on_report is not None:
            future = future or Future()
            task.gate = future.set_running_or_notify_cancel
            self._live[evaluation.index] = _Live(future, task, on_report)
        return task

    def _ensure_engine(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self.drive, name="phase2-pool",
                                                daemon=True)
                self._thread.start()

    def drive(self, queue: Queue | None = None) -> str | None:
        """Run the schedule loop here until the queue is closed and empty (or stopped);
        the interrupt reason, or None."""
        hooks = Hooks(finished=self._finished, attempted=self._attempted, tick=self._tick)
        self.interrupted = schedule(self.executor, queue or self.queue, self._settle, hooks,
                                    self.opts.deadline_s)
        for live in list(self._live.values()):  # stopped or never started: resolve all
            if not live.future.done() and not live.future.cancel():
                live.future.set_exception(CancelledError(self.interrupted or "stopped"))
        return self.interrupted

    def stop(self, reason: str) -> None:
        """Stop everything: queued futures cancelled, running trees killed."""
        for live in list(self._live.values()):
            live.future.cancel()
        self.queue.stop_reason = reason

    def _settle(self, attempt: Attempt) -> bool:
        return self.policy.settle(attempt, self.need)

    def _attempted(self, attempt: Attempt) -> None:
        if self.report is not None:
            self.report.attempt(attempt.task.evaluation.key, attempt.task.attempts,
                                attempt.outcome.verdict)

    def _finished(self, attempt: Attempt) -> None:
        live = self._live.pop(attempt.task.evaluation.index, None)
        if live is not None:  # what it reported since the last tick
            self._read_reports(live, self.executor.events_after(attempt))
        if live is not None and live.malformed:
            attempt.task.notes.append(f"{live.malformed} malformed report line(s) ignored")
        row = record(attempt.task, attempt.outcome, self.opts.metric, attempt.node)
        self.ledger.append(row)
        self.tally.add(row)
        if self.report is not None:
            self.report.finished(row["key"], row["verdict"], row["duration_s"], row["score"],
                                 row["cpu_s"])
        self.snaps.maybe()
        if live is not None and not live.future.done():
            live.future.set_result(Evaluated.of(row, live.reports))

    def _tick(self) -> None:
        """Each loop: the running evaluations' new reports, to their callbacks."""
        for live in list(self._live.values()):
            if live.on_report is None or live.task.pruned:
                continue
            path = self.executor.events_of(live.task)
            if path is not None:
                self._read_reports(live, path)

    def _read_reports(self, live: _Live, path: Path) -> None:
        if live.attempt != live.task.attempts:  # a new attempt: its own events file
            live.attempt, live.offset, live.reports = live.task.attempts, 0, []
        new, live.offset = ev.read_new(path, live.offset)
        for event in new:
            if event.get("event") != ev.REPORT or len(live.reports) >= MAX_REPORTS:
                continue
            report = ev.report_of(event)
            if report is None:
                live.malformed += 1
                continue
            live.reports.append(report)
            if live.on_report is not None and not live.task.pruned:
                self._ask(live, *report)

    def _ask(self, live: _Live, step: int, metrics: dict) -> None:
        """The search's word on one report: stop it, or let it run."""
        assert live.on_report is not None
        try:
            stop = live.on_report(step, metrics)
        except Exception as exc:  # the search's bug: that evaluation stops, the pool goes on
            live.task.pruned = f"on_report raised {type(exc).__name__}: {exc}"[:300]
            live.task.stop_verdict = Verdict.ERROR
            self.executor.cancel(live.task, live.task.pruned)
            return
        if stop:
            live.task.pruned = f"pruned at step {step}: {json.dumps(metrics)[:200]}"
            self.executor.cancel(live.task, live.task.pruned)

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> dict:
        """The summary and results.json (the plan cache learns the peak); closes OUT."""
        try:
            final = self.snaps.summary(self.interrupted)
            if self.strategy.measures and self.tally.ok_peak:
                remember(self.opts, Recipe(self.template, final["thread_caps"]),
                         peak=self.tally.ok_peak, took=dict(self.tally.slowest()),
                         mean_s=self.tally.ok_mean_s)
            return self.snaps.write(final)
        finally:
            self._stack.close()

    def close(self) -> None:
        """Stop at once and close OUT, writing nothing (the run was refused or failed)."""
        self._closed = True
        self._stack.close()

    def __exit__(self, *exc: object) -> bool | None:
        self.shutdown(wait=True, cancel_futures=exc[0] is not None)
        return None


def _no_render(out: Path, results: dict, shown: list[tuple[float, str]]) -> None:
    return None


__all__ = ["Evaluated", "Pool"]
