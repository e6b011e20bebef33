"""The reproduction matrix: conditions x methods -> expected verdicts, in one table.

Read it row by row: each row is a condition, with the reason it exists and what
every method is expected to do under it. An expectation is a verdict for every
sibling ("ok"), or a count over the siblings ("thread_exhaustion>=2", "ok<=1",
"ok=2"). tests/repro generates one test per cell; `--full` adds the cells and
rows that the default (CI-sized) matrix leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import InputError
from harness.host.limits import Limits, parse_size
from harness.launch.condition import Condition
from harness.verdict.verdicts import VERDICTS, Verdict

METHODS = ("subprocess-pipes", "popen-wait", "os-system", "shell", "mp-spawn", "mp-fork",
           "env-isolated", "in-parent", "phase2")
FIELD_METHODS = tuple(m for m in METHODS if m != "phase2")  # what the field could have used
# The methods that start the training in a process of its own. In-parent (Solution B) runs
# it in the launching parent itself, one process for all its calls: its cells have one
# launch, whatever the condition's siblings.
CHILD_METHODS = tuple(m for m in METHODS if m != "in-parent")
IN_PARENT = "in-parent"
_SPEC_RE = re.compile(r"^(?P<verdict>[a-z_]+)(?:(?P<op>>=|<=|=)(?P<count>\d+))?$")

# Budgets, calibrated on a 2-core box (TF 2.21 CPU wheel): one reference child peaks at
# ~22 threads, ~82 with --host-cores 32, ~21 with the pools capped.
TIGHT = 12  # far below one child: TF aborts while starting its pools
FITS_ONE = 30  # one child fits, four do not
FITS_TWO_DEFAULT = 60  # two default children fit (2 x 22), one 32-core child does not (82)
CAPS = {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Expectation:
    verdict: Verdict
    op: str | None = None  # None: every sibling
    count: int = 0

    @classmethod
    def parse(cls, spec: str) -> Expectation:
        """VERDICT, or VERDICT(>=|<=|=)N: 'ok', 'thread_exhaustion>=2'."""
        match = _SPEC_RE.match(spec)
        if not match or match["verdict"] not in VERDICTS:
            raise InputError(f"bad expectation {spec!r}: use VERDICT or VERDICT(>=|<=|=)N")
        return cls(Verdict(match["verdict"]), match["op"], int(match["count"] or 0))

    def holds(self, verdicts: list[str]) -> bool:
        n = verdicts.count(self.verdict)
        if self.op is None:
            return bool(verdicts) and n == len(verdicts)
        return {">=": n >= self.count, "<=": n <= self.count, "=": n == self.count}[self.op]

    def __str__(self) -> str:
        return self.verdict if self.op is None else f"{self.verdict}{self.op}{self.count}"


@dataclass(frozen=True)
class Row:
    condition: Condition
    reason: str
    expect: dict[str, Expectation]  # method -> expectation; "*" for every other method
    default: tuple[str, ...] = CHILD_METHODS  # methods in the CI-sized matrix
    gpu_expect: dict[str, Expectation] = field(default_factory=dict)  # on GPU hosts
    checks: tuple[str, ...] = ()  # extra per-cell checks, see tests/repro
    full_only: bool = False

    @property
    def name(self) -> str:
        return self.condition.name

    def expectation(self, method: str, gpu_host: bool = False) -> Expectation:
        table = {**self.expect, **(self.gpu_expect if gpu_host else {})}
        return table.get(method, table["*"])


def _c(name: str, **kw) -> Condition:
    return Condition(name=name, **kw)


def every(verdict: Verdict) -> Expectation:
    return Expectation(verdict)


def at_least(verdict: Verdict, n: int) -> Expectation:
    return Expectation(verdict, ">=", n)


def at_most(verdict: Verdict, n: int) -> Expectation:
    return Expectation(verdict, "<=", n)


OK, TE = every(Verdict.OK), every(Verdict.THREAD_EXHAUSTION)


REPRESENTATIVE = ("subprocess-pipes", "os-system", "env-isolated", "phase2")
ONE_PROCESS = "in-parent: one process runs every call"

ROWS: tuple[Row, ...] = (
    Row(_c("baseline"),
        "alone, unlimited, clean parent: every method trains, like the terminal",
        {"*": OK}, default=METHODS),
    Row(_c("tight-budget", limits=Limits(tasks=TIGHT)),
        f"a {TIGHT}-task budget is far below one child's need: TF aborts creating threads",
        {"*": TE}),
    Row(_c("shared-budget", limits=Limits(tasks=FITS_ONE), siblings=4),
        f"4 siblings share a {FITS_ONE}-task budget that fits one: the field's 19-of-20, "
        "whatever the method; only admission control (phase2) completes all",
        {"*": at_least(Verdict.THREAD_EXHAUSTION, 2), "phase2": OK, IN_PARENT: OK},
        default=METHODS),
    Row(_c("parent-tf-initialized", parent_tf="initialized"),
        "TF initialised in the parent is harmless to a fresh process; a fork inherits its "
        "dead thread pools and hangs",
        {"*": OK, "mp-fork": every(Verdict.HANG)}, checks=("stack_dump_on_hang",),
        default=METHODS),
    Row(_c("heavy-output", workload_flags=("--verbosity", "2")),
        "~300 KiB of progress output: Popen(...).wait() with undrained pipes deadlocks",
        {"*": OK, "popen-wait": every(Verdict.PIPE_DEADLOCK)},
        default=("subprocess-pipes", "popen-wait", "os-system", "env-isolated", "phase2")),
    Row(_c("cuda-hidden", env={"CUDA_VISIBLE_DEVICES": ""}),
        "CUDA_VISIBLE_DEVICES='' (the report's Solution C) hides every GPU: the child trains "
        "on CPU without an error",
        {"*": OK}, gpu_expect={"*": every(Verdict.NO_GPU_WORK)}, checks=("zero_gpus",),
        default=("subprocess-pipes", "os-system", "env-isolated", IN_PARENT, "phase2")),
    Row(_c("address-space", limits=Limits(address_space=parse_size("3G"),
                                          stack=parse_size("64M"))),
        "RLIMIT_AS 3 GiB with 64 MiB thread stacks: TF imports (~2.5 GiB), then ~20 stacks "
        "cannot be mapped and pthread_create fails with the same EAGAIN as a task limit; a "
        "forked child keeps glibc's 8 MiB stacks (RLIMIT_STACK is read at exec) and fits",
        {"*": TE, "mp-fork": OK, IN_PARENT: OK}, checks=("address_space_cause",)),
    Row(_c("many-core-host", limits=Limits(tasks=FITS_TWO_DEFAULT), siblings=2,
           workload_flags=("--host-cores", "32")),
        f"pools sized for a 32-core host: ~3.7x the threads, so a {FITS_TWO_DEFAULT}-task "
        "budget that fits two default children fits none or one",
        {"*": at_most(Verdict.OK, 1), "phase2": OK}, default=REPRESENTATIVE),
    Row(_c("thread-caps", limits=Limits(tasks=FITS_TWO_DEFAULT), siblings=2,
           workload_flags=("--host-cores", "32"), env=CAPS),
        "many-core-host again with TF_NUM_*/OMP caps set by the parent: fewer threads, both "
        "siblings complete (env-isolated keeps the caps: they are allow-listed)",
        {"*": OK}, default=(*REPRESENTATIVE, IN_PARENT),
        checks=("fewer_threads_than_many_core",)),
    Row(_c("shared-budget-8", limits=Limits(tasks=2 * FITS_ONE), siblings=8),
        "8 siblings share a budget that fits two: most die, whatever the method",
        {"*": at_least(Verdict.THREAD_EXHAUSTION, 4), "phase2": OK, IN_PARENT: OK},
        full_only=True),
    Row(_c("stack-limit", limits=Limits(stack=parse_size("512M"),
                                        address_space=parse_size("8G"))),
        "RLIMIT_STACK 512 MiB makes every thread stack 512 MiB: an 8 GiB address space "
        "holds ~16 of them",
        {"*": TE, "mp-fork": OK, IN_PARENT: OK}, full_only=True,
        checks=("address_space_cause",)),
)


def rows(full: bool) -> list[Row]:
    return [r for r in ROWS if full or not r.full_only]


def cells(full: bool, reference: bool = True) -> list[tuple[Row, str]]:
    """(row, method) pairs to run; rows that change workload flags need the reference."""
    found = []
    for row in rows(full):
        if row.condition.workload_flags and not reference:
            continue
        found += [(row, m) for m in (METHODS if full else row.default)]
    return found
