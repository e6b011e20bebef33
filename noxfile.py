"""Sessions: tests (what CI runs), repro (the main job), fixes, hosts, gpu, bench, lint,
docs (the site), constraints (refreshes constraints.txt).

`nox -s repro -- --full` runs the whole matrix; any other arguments after `--`
go to pytest (e.g. `-k shared-budget`). Environments are made with uv where nox finds it
(`pip install 'nox[uv]'`), else virtualenv, with the Python that runs nox (3.10-3.13),
and installed under constraints.txt: the versions the matrix budgets, the bench figures
and the Ray tests were measured with.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv|virtualenv"

PYTHON = None  # the interpreter nox runs with: whichever the host has
WORKERS = str(os.cpu_count() or 2)
REPORTS = "reports"
CONSTRAINTS = "constraints.txt"


def _install(session: nox.Session, extras: str = "dev") -> None:
    session.install("-e", f".[{extras}]", "-c", CONSTRAINTS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Everything CI checks: lint, unit tests, the default repro matrix, the fixes (with the
    Phase 2 runner on a local Ray cluster), the docs site, and the cgroup v2 host tests in
    a VM."""
    _install(session, "dev,ray,optuna")
    _lint(session)
    _browser(session)
    _runtimes(session)
    # the unit tests, and every shell example of README.md and docs/ run as written
    session.run("pytest", "tests/unit", "tests/docs", "-n", WORKERS, "--dist", "loadgroup",
                f"--junitxml={REPORTS}/unit-junit.xml", *session.posargs)
    _repro(session, session.posargs)
    # reports/repro.html as people see it: its structure, and Chromium's screenshots
    session.run("pytest", "tests/report", f"--repro-report={REPORTS}",
                f"--junitxml={REPORTS}/report-junit.xml")
    session.run("pytest", "tests/fixes", f"--junitxml={REPORTS}/fixes-junit.xml",
                *session.posargs)
    _build_docs(session)
    _hosts(session, session.posargs)


def _build_docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]", "-c", CONSTRAINTS)
    session.run("mkdocs", "build", "--strict", "--quiet", "--site-dir", "site",
                env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site (docs/, mkdocs with the Material theme) into site/, strict:
    a broken link or a page left out of the nav fails it."""
    _build_docs(session)


def _repro(session: nox.Session, args: list[str]) -> None:
    session.run("pytest", "tests/repro", "-n", WORKERS, "--dist", "loadgroup",
                f"--repro-report={REPORTS}", f"--junitxml={REPORTS}/repro-junit.xml", *args)


@nox.session(python=PYTHON)
def repro(session: nox.Session) -> None:
    """The main job: the reproduction matrix on the reference workload (or
    --repro-command); prints the matrix and writes reports/repro.{json,md} + JUnit."""
    _install(session)
    _repro(session, session.posargs)


def _vm_packages_names() -> tuple[str, ...]:
    """Debian's names; Ubuntu (GitHub's runners) calls its kernel linux-image-generic.
    virtme-ng runs `file` on busybox (a minimal Debian root has no `file`)."""
    ubuntu = "ID=ubuntu" in Path("/etc/os-release").read_text().split()
    return ("qemu-system-x86", "linux-image-generic" if ubuntu else "linux-image-amd64",
            "busybox-static", "file")


def _apt(session: nox.Session, ready: bool, packages: tuple[str, ...], why: str) -> None:
    """Debian packages a session needs, unless ready: installed where this is a root
    Debian machine (like CI's), else the exact command, and the session fails."""
    if ready:
        return
    install = f"apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.error(f"{why}: {install}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run(*install.split(), "-qq", external=True, env=env)


# The live thread-exhaustion re-productions (tests/unit/test_exhaustion.py): program ->
# the Debian package that brings it.
RUNTIMES = {"gcc": "gcc", "g++": "g++", "java": "default-jre-headless", "node": "nodejs",
            "ruby": "ruby", "Rscript": "r-base-core", "go": "golang-go", "rustc": "rustc"}


def _runtimes(session: nox.Session) -> None:
    """The compilers and runtimes the unit suite re-produces exhaustion messages with."""
    missing = tuple(dict.fromkeys(pkg for exe, pkg in RUNTIMES.items() if not shutil.which(exe)))
    _apt(session, not missing, missing, "the unit tests re-produce thread exhaustion live in "
         "these runtimes")


def _browser(session: nox.Session) -> None:
    """Headless Chromium for the report tests (GitHub's runners have Chrome already)."""
    ready = any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))
    _apt(session, ready, ("chromium",), "the report tests render pages in Chromium")


def _vm_packages(session: nox.Session) -> None:
    """Debian's qemu, a kernel and busybox for the VM."""
    ready = bool(shutil.which("qemu-system-x86_64") and shutil.which("busybox")
                 and shutil.which("file") and list(Path("/boot").glob("vmlinuz-*")))
    _apt(session, ready, _vm_packages_names(), "the cgroup v2 host tests boot this machine "
         "in a VM")


def _hosts(session: nox.Session, args: list[str]) -> None:
    _vm_packages(session)
    session.install("virtme-ng", "-c", CONSTRAINTS)
    session.run("pytest", "tests/hosts", f"--junitxml={REPORTS}/hosts-junit.xml", *args)


@nox.session(python=PYTHON)
def hosts(session: nox.Session) -> None:
    """Task budgets on a cgroup v2 host (this machine in a VM with cgroup v1 off): at the
    root cgroup, in a pod-like cgroup under a pids.max ancestor, and as a non-root user."""
    _install(session)
    _hosts(session, session.posargs)


@nox.session(python=PYTHON)
def fixes(session: nox.Session) -> None:
    """The Phase 2 runner under the repro conditions, locally and on a local Ray cluster."""
    _install(session, "dev,ray")
    session.run("pytest", "tests/fixes", f"--junitxml={REPORTS}/fixes-junit.xml",
                *session.posargs)


GPU_PREFLIGHT = """
import sys
try:
    import pynvml
    pynvml.nvmlInit()
    count = pynvml.nvmlDeviceGetCount()
    why = "NVML sees no GPU"
except Exception as exc:
    count, why = 0, f"NVML init failed: {exc}"
if not count:
    sys.exit(f"--require-gpu: no GPU is visible to this machine ({why})")
print(f"{count} GPU(s) visible")
"""


@nox.session(python=PYTHON)
def gpu(session: nox.Session) -> None:
    """The GPU CI gate: fails (not skips) where no GPU is visible, before it downloads the
    CUDA wheels."""
    session.install("nvidia-ml-py", "-c", CONSTRAINTS)
    session.run("python", "-c", GPU_PREFLIGHT)
    _install(session, "gpu,dev")
    session.run("pytest", "tests/gpu", "-m", "gpu", "--require-gpu",
                f"--junitxml={REPORTS}/gpu-junit.xml", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (not tests): ratios measured in one run, saved under reports/bench/."""
    _install(session, "dev,ray")
    session.run("python", "-m", "bench", *session.posargs)


def _lint(session: nox.Session) -> None:
    """ruff; mypy over all of harness/ (pyproject.toml's [tool.mypy]); both GitHub
    workflows: their schema (check-jsonschema) and security (zizmor, offline). actionlint is
    not used: its PyPI package downloads a binary."""
    session.install("check-jsonschema", "zizmor")
    session.run("ruff", "check", "harness", "tests", "bench", "noxfile.py", "conftest.py")
    session.run("mypy")
    workflows = [str(p) for p in sorted(Path(".github/workflows").glob("*.yml"))]
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("zizmor", "--offline", ".github/workflows")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """What `tests` checks first: ruff, the type checker, the workflows."""
    _install(session, "dev,optuna")
    _lint(session)


@nox.session(python=PYTHON)
def constraints(session: nox.Session) -> None:
    """Re-resolve constraints.txt for every Python 3.10-3.13 (uv's universal resolution);
    rerun the bench and the tests before committing new pins: the budgets were measured
    with the old ones."""
    session.install("uv")
    extras = [arg for extra in ("dev", "ray", "gpu", "docs", "optuna")
              for arg in ("--extra", extra)]
    session.run("uv", "pip", "compile", "pyproject.toml", *extras, "--universal",
                "--python-version", "3.10", "--no-header", "--quiet", "-o", CONSTRAINTS,
                *session.posargs)
