"""The page `nox -s repro` wrote: reports/repro.html (the matrix, every cell linked to its
launches) and the shared-budget row's race, checked as HTML and as Chromium draws it.
Run after the matrix: `pytest tests/report --repro-report=reports`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import plots
from tests import browser
from tests.unit.test_pages import parse


@pytest.fixture
def reports(request) -> Path:
    out = Path(request.config.getoption("--repro-report"))
    assert (out / "repro.html").is_file(), f"no {out}/repro.html: run the matrix first"
    return out


def test_every_cell_links_to_a_launch_page_with_budget_and_marks(reports):
    matrix = parse(reports / "repro.html")
    assert len(matrix.cell_links) >= 10  # the CI matrix has ~40 cells
    for href in matrix.cell_links:
        page = parse(reports / href)
        in_parent = href.endswith("-in-parent.html")  # and a plot of its calls
        assert page.svgs == 1 + in_parent, href
        assert ("calls-rss" in page.ids and "calls-threads" in page.ids) == in_parent, href
        assert "budget-line" in page.ids, href
        assert any(i.startswith("mark-") for i in page.ids), href


def test_the_shared_budget_race_at_a_glance(reports, tmp_path):
    race = reports / "launches" / "shared-budget-subprocess-pipes.html"
    found = parse(race)
    bands = [i for i in found.ids if i.startswith("threads-sibling")]
    assert len(bands) == 4, bands  # four siblings, stacked against one budget
    assert any(i.startswith("mark-first_error") for i in found.ids)
    shot = browser.screenshot(race, tmp_path / "race.png")
    assert browser.share(shot, plots.color("thread_exhaustion")) > 0.0005  # the badges
    assert browser.share(shot, "#1f77b4", 0.2) > 0.001  # the first sibling's band
    matrix = browser.screenshot(reports / "repro.html", tmp_path / "matrix.png")
    assert browser.share(matrix, plots.color("thread_exhaustion")) > 0.002
    assert browser.share(matrix, plots.color("ok")) > 0.002
