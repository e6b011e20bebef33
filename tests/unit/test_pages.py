"""The HTML reports: every launch keeps its time series; the matrix page links every cell
to its launches; every plot has the budget line and lifecycle marks; a Phase 2 run
writes OUT/report.html with the Gantt, the budget and the decisions; Chromium renders
them (screenshots checked for the colours that carry the story)."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.host.limits import Limits
from harness.launch.condition import Condition
from harness.phase2 import RunOptions, run
from harness.report import plots
from harness.repro import pages
from harness.repro.record import CellRecord
from harness.supervise import samples
from tests import browser
from tests.unit.conftest import FAKE

pytestmark = pytest.mark.xdist_group("cgroups")


class Links(HTMLParser):
    """hrefs of matrix cells, and SVG ids, of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.cell_links: list[str] = []
        self.ids: list[str] = []
        self.svgs = 0
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td":
            self._in_cell = "cell" in (a.get("class") or "")
        if tag == "a" and self._in_cell:
            self.cell_links.append(a["href"] or "")
        if tag == "svg":
            self.svgs += 1
        if a.get("id"):
            self.ids.append(a["id"] or "")


def parse(path: Path) -> Links:
    found = Links()
    found.feed(path.read_text())
    return found


def _cell(condition: str, method: str, outcomes) -> CellRecord:
    return CellRecord.of(condition, method, "test", "ok", outcomes, True)


@pytest.fixture(scope="module")
def repro_pages(tmp_path_factory) -> Path:
    """A two-cell matrix: two siblings racing for a 20-task budget, and one alone."""
    from harness.launch import spec as launch
    from harness.launch.command import Command

    tmp = tmp_path_factory.mktemp("pages")
    racing = launch.run(launch.LaunchSpec(
        Command((sys.executable, str(FAKE), "hold-threads", "12")), "subprocess-pipes",
        Condition(name="shared", siblings=2, limits=Limits(tasks=20)), tmp / "race"))
    alone = launch.run(launch.LaunchSpec(
        Command((sys.executable, str(FAKE), "hold-threads", "3")), "subprocess-pipes",
        Condition(name="alone"), tmp / "alone"))
    report = {"cells": [_cell("shared", "subprocess-pipes", racing),
                        _cell("alone", "subprocess-pipes", alone)],
              "passed": True, "findings": ["a finding"]}
    pages.write_repro(report, tmp / "reports")
    return tmp / "reports"


def test_every_launch_keeps_its_samples_and_marks(repro_pages):
    log_dir = repro_pages.parent / "race" / "sibling-0"
    points, marks = samples.read(log_dir)
    assert points and all({"t", "threads", "budget_current", "budget_max"} <= set(p)
                          for p in points)
    assert {p["budget_max"] for p in points} == {20}
    names = [m["mark"] for m in marks]
    assert names[0] == "launched" and "reaped" in names and "work_started" in names


def test_matrix_links_every_cell_and_every_plot_has_budget_and_marks(repro_pages):
    matrix = parse(repro_pages / "repro.html")
    assert len(matrix.cell_links) == 2
    for href in matrix.cell_links:
        launch_page = repro_pages / href
        assert launch_page.is_file(), href
        found = parse(launch_page)
        assert found.svgs == 1
        assert "budget-line" in found.ids
        assert any(i.startswith("mark-") for i in found.ids), found.ids
    race = parse(repro_pages / "launches" / "shared-subprocess-pipes.html")
    assert {"threads-sibling 0", "threads-sibling 1"} <= set(race.ids)
    assert any(i.startswith("mark-first_error") for i in race.ids)  # the one that lost


def test_chromium_shows_the_matrix_and_the_race(repro_pages, tmp_path):
    matrix = browser.screenshot(repro_pages / "repro.html", tmp_path / "matrix.png")
    assert browser.share(matrix, plots.color("ok")) > 0.001  # a green cell is drawn
    assert browser.share(matrix, plots.color("thread_exhaustion")) > 0.001
    race = browser.screenshot(repro_pages / "launches" / "shared-subprocess-pipes.html",
                              tmp_path / "race.png")
    tab_blue, tab_orange = "#1f77b4", "#ff7f0e"  # sibling 0 and sibling 1 (tab10)
    assert browser.share(race, tab_blue, 0.2) > 0.002
    assert browser.share(race, tab_orange, 0.2) > 0.0005


def test_phase2_run_writes_a_report_chromium_renders(tmp_path):
    template = [sys.executable, str(FAKE), "hold-threads", "3", "{n}"]
    grid = [{"n": i} for i in range(3)]
    results = run(template, grid, RunOptions(out=tmp_path / "out", jobs=2, tasks_budget=60,
                                             live=False))
    page = tmp_path / "out" / "report.html"
    found = parse(page)
    keys = [e["key"] for e in results["evaluations"]]
    assert {f"eval-{k}" for k in keys} <= set(found.ids)
    assert "budget-line" in found.ids and "decision-0" in found.ids
    assert found.svgs == 2
    shot = browser.screenshot(page, tmp_path / "run.png")
    assert browser.share(shot, plots.color("ok")) > 0.005  # the Gantt's bars


def test_a_run_stopped_before_any_attempt_still_gets_its_report(tmp_path):
    from harness.phase2.view import html as run_report

    (tmp_path / "evals" / "0000-k" / "attempt-1").mkdir(parents=True)  # no outcome yet
    summary = {"ok": 0, "total": 2, "wall_s": 0.5, "strategy": "runner", "executor": "ray",
               "max_running": 0, "per_child_need": None, "metric": "score", "best": None,
               "interrupted": "SIGTERM", "missing": ["0000-k", "0001-k"],
               "decisions": ["a decision"], "budget": None, "started_at": 1.0}
    page = run_report.write(tmp_path, {"evaluations": [], "summary": summary},
                            [(1.5, "a decision")])
    found = parse(page)
    assert found.svgs == 2 and "budget-line" in found.ids and "decision-0" in found.ids
    assert "SIGTERM" in page.read_text()
