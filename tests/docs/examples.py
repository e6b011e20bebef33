"""The shell examples of README.md and docs/*.md, lexed by Sybil, judged as a user would.

Sybil finds the fenced blocks (its Markdown lexer knows fences, prefixes and nesting, which
a regex scraper gets wrong); the HTML comment right above a block says how it is judged:

    <!-- run: exit=0 expect="measured" expect="budget:" -->    run it, check both
    <!-- not-run: needs a GPU -->                             counted and printed, not run

A shell block with neither fails: a new example nobody runs cannot slip in. Each example
runs as written, by bash with `set -e`, in an empty temporary directory of its own, with
the installed `harness` first on PATH and HOME, XDG dirs and the plan cache in that
directory (the user's are never touched). The exit status is the block's: the first
command that fails, or the last one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("README.md", "docs/*.md")
SHELLS = "bash|sh|shell|console"
RULE = re.compile(r"<!--\s*(?P<kind>run|not-run):\s*(?P<args>.*?)\s*-->\s*\Z", re.DOTALL)
EXAMPLE_TIMEOUT_S = 280.0  # under the suite's per-test timeout, so this one names the block
OUTPUT_SHOWN = 3000  # characters of a failed example's output in the assertion


@dataclass(frozen=True)
class Rule:
    """How one example is judged: run (exit status, phrases) or not run (why)."""

    run: bool
    exit: int = 0
    expect: tuple[str, ...] = ()
    why: str = ""


@dataclass
class ShellExample:
    page: str
    line: int
    source: str
    rule: Rule | None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def _rule(args: str, kind: str) -> Rule:
    if kind == "not-run":
        return Rule(run=False, why=args)
    words = shlex.split(args)
    exits = [int(w.split("=", 1)[1]) for w in words if w.startswith("exit=")]
    expect = tuple(w.split("=", 1)[1] for w in words if w.startswith("expect="))
    unknown = [w for w in words if not w.startswith(("exit=", "expect="))]
    if unknown or len(exits) > 1:
        raise ValueError(f"bad run rule {args!r}: use exit=N and expect=\"phrase\"")
    return Rule(run=True, exit=exits[0] if exits else 0, expect=expect)


def _rule_above(text: str, start: int) -> Rule | None:
    """The rule in the HTML comment that ends on the line before the block, if any."""
    found = RULE.search(text[:start].rstrip("\n").rsplit("\n\n", 1)[-1])
    return _rule(found["args"], found["kind"]) if found else None


def _console_to_script(source: str) -> str:
    """A `console` block shows prompts: keep the lines after `$ `, drop the output."""
    return "\n".join(line[2:] for line in source.splitlines() if line.startswith("$ "))


class ShellBlocks:
    """A Sybil parser: every fenced shell block becomes one ShellExample."""

    lexer = FencedCodeBlockLexer(SHELLS)

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.lexer(document):
            source = str(region.lexemes["source"])
            if region.lexemes["language"] == "console":
                source = _console_to_script(source)
            line = document.text.count("\n", 0, region.start) + 1
            page = str(Path(document.path).relative_to(ROOT))
            region.parsed = ShellExample(page, line, source, _rule_above(document.text,
                                                                         region.start))
            region.evaluator = _evaluate
            yield region


def examples() -> list[Example]:
    """Every shell example of the pages, in page order (Sybil's Examples: `.parsed` is the
    ShellExample, `.evaluate()` judges it)."""
    sybil = Sybil(parsers=[ShellBlocks()], path=str(ROOT), patterns=list(PAGES))
    return [example for pattern in PAGES for path in sorted(ROOT.glob(pattern))
            for example in sybil.parse(path)]


def environment(work: Path) -> dict[str, str]:
    """The user's environment as a shell has it, with the installed harness first on PATH
    and every place a program writes state pointed into `work`."""
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "HOME": str(work / "home"), "HARNESS_PLAN_CACHE": str(work / "plan-cache"),
                "COLUMNS": "100", "MPLCONFIGDIR": str(work / "mpl")})
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[name] = str(work / name.lower())
    return env


def run_example(example: ShellExample) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="harness-docs-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        return subprocess.run(["bash", "-euo", "pipefail", "-c", example.source], cwd=work,
                              env=environment(work), capture_output=True, text=True,
                              timeout=EXAMPLE_TIMEOUT_S, stdin=subprocess.DEVNULL)


def _evaluate(example: Example) -> str | None:
    shell: ShellExample = example.parsed
    if shell.rule is None:
        return (f"{shell.name}: a shell example with neither <!-- run: exit=N expect=\"...\" -->"
                " nor <!-- not-run: why --> above it")
    if not shell.rule.run:
        return None if shell.rule.why else f"{shell.name}: not-run needs its reason"
    if not shell.rule.expect:
        return f"{shell.name}: a run rule names at least one expect=\"phrase\" of its output"
    done = run_example(shell)
    said = done.stdout + done.stderr
    wrong = [] if done.returncode == shell.rule.exit else [
        f"exit {done.returncode}, the page says {shell.rule.exit}"]
    wrong += [f"no {phrase!r} in its output" for phrase in shell.rule.expect
              if phrase not in said]
    if wrong:
        return f"{shell.name}: " + "; ".join(wrong) + "\n" + said[-OUTPUT_SHOWN:]
    return None
