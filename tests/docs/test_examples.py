"""Every shell example in README.md and docs/ runs as written, or says why it does not."""

from __future__ import annotations

import pytest

from tests.docs.examples import examples

EXAMPLES = examples()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.parsed.name for e in EXAMPLES])
def test_the_example_does_what_its_page_says(example):
    example.evaluate()  # sybil.SybilFailure names the page, the line and what differed


def test_the_pages_have_examples_that_run():
    assert sum(1 for e in EXAMPLES if e.parsed.rule and e.parsed.rule.run) >= 10
