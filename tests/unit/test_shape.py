"""The package's shape: imports run one way (no cycle), modules and functions stay small.

Imports are read with `ast`, as Python runs them: module-level and function-level
imports count, imports under `if TYPE_CHECKING:` do not (they never execute).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "harness"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.AST, module: str, known: set[str]) -> set[str]:
    """harness modules this module imports when it runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this package
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{node.module}"
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if name in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != module}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    known = set(files)
    return {name: _imported(ast.parse(path.read_text()), name, known)
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_in_harness():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one(tmp_path):
    package = tmp_path / "harness"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from harness.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from harness import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from harness import a\n")
    graph = import_graph(package)
    assert graph["harness.c"] == set()  # typing-only imports never run
    assert find_cycle(graph) == ["harness.a", "harness.sub.b", "harness.a"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_and_functions_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path} has grown past the limit"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: {long}"


# -- the house by stage ---------------------------------------------------------------

# Low to high: a package imports only those before it (and the top-level modules).
STAGES = ("host", "workload", "supervise", "verdict", "launch", "report", "phase2",
          "integrations", "repro", "cli")
TOP_LEVEL_MODULES = {"__init__", "__main__", "errors", "jsonio", "envpolicy", "untrusted"}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else None


def test_top_level_holds_packages_and_a_handful_of_modules():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert modules <= TOP_LEVEL_MODULES, sorted(modules - TOP_LEVEL_MODULES)
    assert packages == set(STAGES)
    for package in packages:  # each says what it holds
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 20, f"harness/{package}/__init__.py: {doc!r}"


def test_packages_import_only_downwards():
    rank = {name: i for i, name in enumerate(STAGES)}
    wrong = []
    for module, imports in import_graph().items():
        if module == "harness.__main__":  # `python -m harness`: the entry, above them all
            continue
        here = _stage(module)
        for imported in imports:
            there = _stage(imported)
            if here is None:  # a top-level module: nothing of the packages
                if there is not None:
                    wrong.append(f"{module} -> {imported}")
            elif there is not None and rank[there] > rank[here]:
                wrong.append(f"{module} -> {imported}")
    assert not wrong, "imports upwards: " + ", ".join(sorted(wrong))


# -- phase2 by job -------------------------------------------------------------------

# Low to high inside harness/phase2: a job imports only the jobs before it, and the
# foundation modules (options, layout, strategy) import no job at all.
PHASE2_JOBS = ("grid", "need", "schedule", "executors", "record", "view", "runner")
PHASE2_FOUNDATION = {"options", "layout", "strategy"}
PHASE2_MAX_TOP_MODULES = 8


def _job(module: str) -> str | None:
    """The phase2 job a module belongs to ('foundation' for options/layout/strategy;
    the package's own __init__ is the entry, like runner)."""
    parts = module.split(".")
    if parts[:2] != ["harness", "phase2"]:
        return None
    if len(parts) == 2 or parts[2] not in {*PHASE2_JOBS, *PHASE2_FOUNDATION}:
        return "runner"  # the entry: runner, pool, prepare, the package itself
    return "foundation" if parts[2] in PHASE2_FOUNDATION else parts[2]


def test_phase2_is_a_few_modules_and_its_jobs_in_subpackages():
    top = {p.stem for p in (PACKAGE / "phase2").glob("*.py")}
    jobs = {p.name for p in (PACKAGE / "phase2").iterdir() if (p / "__init__.py").is_file()}
    assert len(top) <= PHASE2_MAX_TOP_MODULES, sorted(top)
    assert jobs == set(PHASE2_JOBS) - {"runner"}, sorted(jobs)


def test_phase2_jobs_import_only_earlier_jobs():
    rank = {"foundation": -1, **{name: i for i, name in enumerate(PHASE2_JOBS)}}
    wrong = []
    for module, imports in import_graph().items():
        here = _job(module)
        for imported in imports:
            there = _job(imported)
            if here is not None and there is not None and rank[there] > rank[here]:
                wrong.append(f"{module} -> {imported}")
    assert not wrong, "phase2 imports upwards: " + ", ".join(sorted(wrong))


VERDICT_NAMES = {"ok", "thread_exhaustion", "hang", "pipe_deadlock", "timeout", "crash",
                 "error", "no_gpu_work", "launch_error", "node_lost", "pruned"}


def test_verdict_names_match_the_enum():
    from harness.verdict.verdicts import VERDICTS

    assert set(VERDICTS) == VERDICT_NAMES


def _bare_verdicts(tree: ast.AST) -> list[int]:
    """Lines where a verdict's name is a bare string (dict keys and subscripts are field
    names, like a summary's "ok" count, not verdicts)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Subscript):
            names.add(id(node.slice))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in VERDICT_NAMES
            and id(node) not in names]


def test_no_bare_verdict_strings_outside_the_verdict_package():
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}"
             for path in sorted(PACKAGE.rglob("*.py")) if "verdict" not in path.parts
             for line in _bare_verdicts(ast.parse(path.read_text()))]
    assert not found, f"use Verdict members: {found}"


def test_the_bare_verdict_finder_finds_one():
    assert _bare_verdicts(ast.parse('if v == "hang":\n    x = {"ok": 1}["ok"]\n')) == [1]


WRITERS = {"write_json", "write_atomic", "write_text", "write_bytes", "open"}


def _writes_outcome(tree: ast.AST) -> list[int]:
    """Lines that hand something's `.outcome` path (LaunchFiles.outcome) to a writer."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in WRITERS
            and any(isinstance(a, ast.Attribute) and a.attr == "outcome"
                    for a in [*node.args, getattr(node.func, "value", None)])]


def test_one_writer_of_outcome_json():
    writer = PACKAGE / "verdict" / "outcome.py"
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != writer
             for line in _writes_outcome(ast.parse(path.read_text()))]
    assert not found, f"outcome.json is written by Outcome.save() only: {found}"
    assert _writes_outcome(ast.parse(writer.read_text()))
    assert _writes_outcome(ast.parse("files.outcome.write_text(x)\nopen(f.outcome, 'w')\n")) \
        == [1, 2]
