"""Pictures for the HTML reports, drawn with matplotlib and inlined as SVG.

Every artist a test or a reader looks for has an SVG id: `budget-line`, `mark-<name>`
for a lifecycle mark, `threads-<label>` for a sibling's band, `eval-<key>` for a Gantt bar,
`decision-<n>` for an admission decision.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

from harness.verdict.verdicts import Verdict, look

MARK_STYLES = {"launched": ":", "work_started": "--", "first_error": "-", "completed": "-.",
               "killed": "-", "exited": ":", "reaped": ":"}
WIDTH_IN = 9.0


@dataclass
class Series:
    """One launch's samples for a plot: label, (t, threads) points and marks."""

    label: str
    samples: list[dict]
    marks: list[dict] = field(default_factory=list)
    verdict: str = Verdict.OK


def color(verdict: str) -> str:
    return look(verdict).color


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog or doctype


def _step_sum(series: Sequence[Series], t0: float) -> tuple[list[float], list[list[int]]]:
    """Every sibling's thread count on one common time axis (the union of sample times;
    a launch counts 0 before its first sample and after its last)."""
    times = sorted({s["t"] for one in series for s in one.samples})
    stacks = []
    for one in series:
        points, i, now, values = one.samples, 0, 0, []
        for t in times:
            while i < len(points) and points[i]["t"] <= t:
                now = points[i]["threads"]
                i += 1
            values.append(now if points and points[0]["t"] <= t <= points[-1]["t"] else 0)
        stacks.append(values)
    return [t - t0 for t in times], stacks


def threads(series: Sequence[Series], budget: int | None, title: str) -> str:
    """Threads over time per launch, stacked, against the budget line, with the marks."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.4))
    t0 = min((s["t"] for one in series for s in one.samples), default=0.0)
    times, stacks = _step_sum(series, t0)
    if times:
        polys = ax.stackplot(times, stacks, step="post", alpha=0.8,
                             labels=[one.label for one in series],
                             colors=[plt.cm.tab10(i % 10) for i in range(len(series))])
        for poly, one in zip(polys, series, strict=True):
            poly.set_gid(f"threads-{one.label}")
    top = budget or max((sum(col) for col in zip(*stacks, strict=True)), default=1)
    ax.axhline(budget or top, color="black", linewidth=1.6,
               linestyle="-" if budget else ":", gid="budget-line",
               label=f"budget {budget} tasks" if budget else "no budget (peak)")
    _marks(ax, series, t0)
    ax.set(xlabel="seconds since the first launch", ylabel="threads (tasks)", title=title,
           ylim=(0, top * 1.15))
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    return _svg(fig)


def _marks(ax: plt.Axes, series: Sequence[Series], t0: float) -> None:
    for i, one in enumerate(series):
        for mark in one.marks:
            ax.axvline(mark["t"] - t0, color=plt.cm.tab10(i % 10),
                       linestyle=MARK_STYLES.get(mark["mark"], ":"), linewidth=0.9,
                       gid=f"mark-{mark['mark']}-{i}")
            if mark["mark"] in ("work_started", "first_error", "completed"):
                ax.annotate(mark["mark"], (mark["t"] - t0, 0), rotation=90, fontsize=6,
                            xytext=(2, 4), textcoords="offset points", va="bottom")


@dataclass
class Bar:
    """One attempt of one evaluation in the Gantt: queued from, ran from, until."""

    key: str
    queued: float
    start: float
    end: float
    verdict: str


def gantt(bars: Sequence[Bar], t0: float) -> str:
    """Evaluations over time: a thin grey queue segment, then a bar coloured by verdict;
    retries are further bars on the same row."""
    keys = list(dict.fromkeys(b.key for b in bars))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.35 * len(keys) + 1.2))
    for bar in bars:
        row = keys.index(bar.key)
        ax.barh(row, bar.start - bar.queued, left=bar.queued - t0, height=0.25,
                color="#bdbdbd", gid=f"queue-{bar.key}")
        ax.barh(row, bar.end - bar.start, left=bar.start - t0, height=0.6,
                color=color(bar.verdict), gid=f"eval-{bar.key}")
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="seconds since the run started", title="evaluations (grey: queued)")
    if not bars:  # e.g. interrupted before any attempt started
        ax.text(0.5, 0.5, "no attempt has started", ha="center", transform=ax.transAxes)
        return _svg(fig)
    used = sorted({b.verdict for b in bars})
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=color(v)) for v in used],
              labels=used, fontsize=7, loc="lower right")
    return _svg(fig)


def budget_use(points: Sequence[tuple[float, int]], budget: int | None,
               decisions: Sequence[tuple[float, str]], t0: float) -> str:
    """Tasks in use by the run's budget group over time, the budget, and where the
    admission decisions were taken."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.0))
    if points:
        ax.step([t - t0 for t, _ in points], [n for _, n in points], where="post",
                color="#1565c0", label="tasks in use", gid="in-use")
    top = budget or max((n for _, n in points), default=1)
    ax.axhline(top, color="black", linewidth=1.6, linestyle="-" if budget else ":",
               gid="budget-line", label=f"budget {budget}" if budget else "no budget (peak)")
    for i, (t, _) in enumerate(decisions):
        ax.axvline(t - t0, color="#ef6c00", linewidth=0.8, linestyle="--",
                   gid=f"decision-{i}")
        ax.annotate(str(i + 1), (t - t0, top * 1.02), fontsize=6, color="#ef6c00")
    ax.set(xlabel="seconds since the run started", ylabel="tasks", ylim=(0, top * 1.15),
           title="the budget: tasks in use, and admission decisions (numbered)")
    ax.legend(loc="lower right", fontsize=7)
    return _svg(fig)


OCCUPANCY_BINS = 400  # however many evaluations: the picture (and the page) stays small


class Occupancy:
    """How many evaluations ran at once, as the mean over each of OCCUPANCY_BINS steps of
    the run: fed one evaluation at a time, OCCUPANCY_BINS numbers whatever the grid."""

    def __init__(self, t0: float, span_s: float) -> None:
        self.t0, self.width = t0, max(span_s, 1e-9) / OCCUPANCY_BINS
        self.busy = np.zeros(OCCUPANCY_BINS)  # evaluation-steps spent running in each
        self.count = 0

    def add(self, start: float, end: float) -> None:
        """One evaluation's run, clipped to the span (a resumed run's earlier ones start
        before it)."""
        a = min(max((start - self.t0) / self.width, 0.0), OCCUPANCY_BINS)
        b = min(max((end - self.t0) / self.width, a), OCCUPANCY_BINS)
        self.count += 1
        first, last = int(a), min(int(b), OCCUPANCY_BINS - 1)
        if first >= OCCUPANCY_BINS:
            return
        if first == last:
            self.busy[first] += b - a
            return
        self.busy[first] += first + 1 - a
        self.busy[first + 1:last] += 1.0
        self.busy[last] += b - last


def occupancy(occ: Occupancy) -> str:
    """The Gantt of a grid too large for a row per evaluation: how many ran at once."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6))
    ax.fill_between([i * occ.width for i in range(OCCUPANCY_BINS + 1)],
                    [*occ.busy, occ.busy[-1]], step="post", color=Verdict.OK.color,
                    alpha=0.7, gid="occupancy")
    ax.set(xlabel="seconds since the run started",
           ylabel="evaluations at once",
           title=f"{occ.count} evaluations: how many ran at once "
                 f"(the mean over each {occ.width:.3g} s)")
    return _svg(fig)


def calls(records: Sequence[dict], title: str) -> str:
    """In-parent: the process's RSS (left axis) and threads (right) after each call, so
    what one call leaves to the next shows as a slope. Ids: calls-rss, calls-threads."""
    numbers = [c["call"] for c in records]
    fig, ax = plt.subplots(figsize=(WIDTH_IN / 2, 2.6))
    rss = ax.plot(numbers, [c["rss_mb"] for c in records], marker="o", color="tab:blue",
                  label="RSS (MB)")[0]
    rss.set_gid("calls-rss")
    ax.set(xlabel="call", ylabel="RSS (MB)", title=title)
    ax.set_xticks(numbers)
    right = ax.twinx()
    threads = right.plot(numbers, [c["threads"] for c in records], marker="s",
                         color="tab:orange", label="threads")[0]
    threads.set_gid("calls-threads")
    right.set_ylabel("threads")
    ax.legend(handles=[rss, threads], loc="lower right", fontsize="small")
    return _svg(fig)
