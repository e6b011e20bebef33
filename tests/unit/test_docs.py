"""The README keeps what a newcomer needs and opens with the two commands; the rest is the
site in docs/ (nox -s docs builds it strictly; this checks what that cannot)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 150


def test_readme_opens_with_the_two_commands_and_stays_short():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    first_block = text.split("```")[1]
    lines = [line for line in first_block.splitlines()[1:] if line.strip()]
    assert len(lines) == 2 and "nox -s repro" in lines[0] and "nox -s tests" in lines[1]


def test_every_page_the_readme_names_exists_and_is_in_the_site():
    text = (ROOT / "README.md").read_text()
    pages = re.findall(r"\]\((docs/[^)]+\.md)\)", text)
    nav = (ROOT / "mkdocs.yml").read_text()
    assert pages
    for page in pages:
        assert (ROOT / page).is_file(), page
        assert Path(page).name in nav, f"{page} is not in mkdocs.yml's nav"
