"""Thread exhaustion means a thread or process could not be created: the corpus of real
messages (many runtimes, quoted from public reports) against near-misses, the same
messages produced live under a real pids cgroup, and a runner that retries the first and
never the second."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.limits import Limits
from harness.launch import spec as launch
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.phase2 import RunOptions, run
from harness.phase2.need import plan as plans
from harness.phase2.need.caps import Recipe, cpus, thread_caps
from harness.supervise.files import LaunchFiles
from harness.supervise.observation import Observation
from harness.verdict import exhaustion
from harness.verdict.classify import classify
from harness.verdict.probes import Observed

from .conftest import FAKE
from .exhaustion_corpus import NEAR, REAL, family

PROGRAMS = Path(__file__).resolve().parent / "exhaustion_programs"


def _classify(tmp_path: Path, text: str, returncode: int = 1) -> str:
    files = LaunchFiles(tmp_path)
    files.stdout.write_text("")
    files.stderr.write_text(f"starting\n{text}\nbye\n")
    found = classify(Observation(0, files), {"returncode": returncode}, Observed(True, False),
                     budget={"backend": "none"}, limits={}, events_max_delta=0,
                     gpu_expected=False)
    return found.verdict


def test_the_corpus_is_broad():
    quoted = [m for m in REAL if m.source.startswith("https://")]
    assert len(quoted) >= 80 and len(NEAR) >= 40
    assert all(n.source.startswith(("https://", "produced", "quoted", "constructed"))
               for n in NEAR)
    assert len({family(m.runtime) for m in REAL}) >= 25  # distinct runtimes
    assert sum(m.source.startswith("produced") for m in REAL) >= 12


@pytest.mark.parametrize("message", REAL, ids=lambda m: m.runtime)
def test_real_message_is_thread_exhaustion(message, tmp_path):
    found = exhaustion.find_in_lines(message.text.splitlines())
    assert found is not None, message.text
    assert found.rule  # every match names its rule
    assert _classify(tmp_path, message.text) == "thread_exhaustion"
    assert _classify(tmp_path, message.text, returncode=-6) == "thread_exhaustion"


@pytest.mark.parametrize("near", NEAR, ids=lambda n: n.kind)
def test_near_miss_is_not(near, tmp_path):
    assert exhaustion.find_in_lines(near.text.splitlines()) is None, (near.text, near.why)
    assert _classify(tmp_path, near.text) == "error"
    assert _classify(tmp_path, near.text, returncode=-6) == "crash"


def test_a_run_that_carries_on_without_its_threads_is_ok_and_says_so(tmp_path):
    # OpenBLAS with SIGINT ignored (a background job): the failure is printed, then the
    # program really completes with fewer threads. ok, with the message as evidence.
    message = ("OpenBLAS blas_thread_init: pthread_create failed for thread 1 of 2: "
               "Resource temporarily unavailable")
    code = f"import sys; sys.stderr.write({message!r} + '\\n')"
    [outcome] = launch.run(launch.LaunchSpec(Command((sys.executable, "-c", code)),
                                             "env-isolated", Condition(), tmp_path / "l"))
    assert outcome.verdict == "ok"
    assert any(e.startswith("completed although pthreads") and "fewer threads" in e
               for e in outcome.evidence), outcome.evidence


def test_context_is_looked_for_on_both_sides():
    assert exhaustion.find_in_lines(["Error: EAGAIN", "    at new Worker (x.js:1:1)"])
    assert exhaustion.find_in_lines(["Error: EAGAIN", "    at Object.readSync (fs:1)"]) is None
    far = ["BlockingIOError: [Errno 11]"] + ["noise"] * exhaustion.CONTEXT_LINES
    assert exhaustion.find_in_lines(["os.fork()", *["noise"] * 20, *far]) is None


# -- live: the runtimes installed here, under a real pids budget ----------------------

def _build(tmp_path_factory, source: str, compiler: list[str]) -> list[str]:
    """Compile one program (its compiler on PATH: nox -s tests installs the missing ones)."""
    out = tmp_path_factory.mktemp("bin") / Path(source).stem
    assert shutil.which(compiler[0]), f"{compiler[0]} is needed for this test (on PATH)"
    subprocess.run([*compiler, "-o", str(out), str(PROGRAMS / source)], check=True)
    return [str(out)]


LIVE = {
    "CPython threading": (20, lambda _: [sys.executable, str(FAKE), "threads", "100"]),
    "CPython subprocess": (6, lambda _: [sys.executable, str(PROGRAMS / "popen.py")]),
    "bash": (6, lambda _: ["bash", "-c", "for i in $(seq 20); do sleep 5 & done; wait"]),
    "dash": (6, lambda _: ["dash", "-c", "for i in 1 2 3 4 5 6 7 8 9; do sleep 5 & done"]),
    "C pthreads": (20, lambda f: _build(f, "threads.c", ["gcc", "-pthread"])),
    "C++ std::thread": (20, lambda f: _build(f, "threads.cpp", ["g++", "-pthread"])),
    "OpenMP libgomp": (20, lambda f: _build(f, "omp.c", ["gcc", "-fopenmp"])),
    "OpenBLAS": (1, lambda _: [sys.executable, "-c", "import numpy"]),
    "JVM": (40, lambda f: ["java", "-Xss256k", str(PROGRAMS / "Spawn.java")]),
    "Node.js": (12, lambda _: ["node", str(PROGRAMS / "spawn.js")]),
    "Ruby": (10, lambda _: ["ruby", str(PROGRAMS / "threads.rb")]),
    "R (mcfork)": (8, lambda _: ["Rscript", str(PROGRAMS / "fork.R")]),
    "Go": (20, lambda f: _build(f, "threads.go", ["go", "build"])),
    "Rust": (20, lambda f: _build(f, "threads.rs", ["rustc", "-O"])),
}


@pytest.mark.parametrize("name", list(LIVE))
def test_live_message_under_a_pids_budget(name, tmp_path, tmp_path_factory):
    budget, argv = LIVE[name]
    argv = argv(tmp_path_factory)
    assert shutil.which(argv[0]), f"{argv[0]} is needed for this test (on PATH)"
    spec = launch.LaunchSpec(Command(tuple(argv)), "env-isolated",
                             Condition(limits=Limits(tasks=budget)), tmp_path / "launch",
                             timeout_s=60.0, stall_timeout_s=20.0)
    # OpenBLAS answers a failed pthread_create with raise(SIGINT): where this process runs
    # with SIGINT ignored (a background job of a non-interactive shell), the child inherits
    # that, carries on single-threaded and really completes. Launch as a terminal would.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        [outcome] = launch.run(spec)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcome.verdict == "thread_exhaustion", (outcome.evidence, outcome.stderr_tail)
    assert any("could not be created" in e for e in outcome.evidence), outcome.evidence
    assert any(e.startswith("pids.events max +") for e in outcome.evidence)


# -- the runner acts on the difference -----------------------------------------------

def _one_each(entries, key) -> list:
    """One entry per runtime family: the runner's test runs a child per message."""
    chosen: dict[str, object] = {}
    for entry in entries:
        chosen.setdefault(family(key(entry)), entry)
    return list(chosen.values())


def test_runner_retries_real_messages_and_never_near_misses(tmp_path):
    said = tmp_path / "said"
    said.mkdir()
    grid = [{"kind": "warmup", "n": 0}]
    pairs = [("real", m.text) for m in _one_each(REAL, lambda m: m.runtime)]
    pairs += [("near", n.text) for n in _one_each(NEAR, lambda n: n.kind)]
    for n, (kind, text) in enumerate(pairs):
        (said / f"{kind}-{n}.txt").write_text(text)
        grid.append({"kind": kind, "n": n})
    (said / "warmup-0.txt").write_text("")
    template = [sys.executable, str(FAKE), "stderr-file", str(said / "{kind}-{n}.txt")]
    out = tmp_path / "out"
    out.mkdir()  # a per-child peak measured before: children run side by side at once
    plans.save_measurement(out, Recipe(template, thread_caps(cpus(), 2)), 10)
    results = run(template, grid, RunOptions(out=out, jobs=2, live=False,
                                             stall_timeout_s=20.0))
    rows = [r for r in results["evaluations"] if r["params"]["kind"] != "warmup"]
    near = [r for r in rows if r["params"]["kind"] == "near"]
    real = [r for r in rows if r["params"]["kind"] == "real"]
    assert {r["verdict"] for r in near} == {"error"}, json.dumps(near, indent=1)
    assert all(r["attempts"] == 1 for r in near)
    assert {r["verdict"] for r in real} == {"thread_exhaustion"}
    assert any(r["attempts"] > 1 for r in real)  # the retry path was live in this run
