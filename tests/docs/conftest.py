"""Print how many of the pages' shell examples ran, and why the others did not."""

from __future__ import annotations

from collections import Counter


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput"):
        return
    from tests.docs.examples import examples

    rules = [e.parsed.rule for e in examples()]
    ran = sum(1 for r in rules if r and r.run)
    why = Counter(r.why for r in rules if r and not r.run)
    terminalreporter.write_line(f"docs examples: {ran} run, {sum(why.values())} not run")
    for reason, count in why.most_common():
        terminalreporter.write_line(f"  not run ({count}): {reason}")
