"""The grid: parameter dicts, the command template they fill, and their stable keys.

A grid file is JSON (a list of objects, or {"evaluations": [...]}) or TOML
(`[[evaluation]]` tables, or `evaluations = [...]`). The template is the
command after `--`, with `{name}` placeholders; `{{`/`}}` are literal braces.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shlex
import stat
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import untrusted
from harness.errors import InputError
from harness.launch.command import FIELD_ARGS, WORKLOAD_MODULE, Command

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIELD_CENTER = {"threshold_I": 17, "threshold_P": 18, "threshold_R": 19}
DEFAULT_SIZE = 20
_SCALARS = (int, float, str, bool)
MAX_VALUE_BYTES = 64 << 10  # one grid value; an argv string may not pass 128 KiB (E2BIG)




@dataclass(frozen=True, slots=True)
class Evaluation:
    """One entry of the grid; params is the grid's own table (never mutated), not a copy:
    a grid of 100,000 is held once."""

    index: int
    params: dict

    @property
    def key(self) -> str:
        digest = hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()
        return f"{self.index:04d}-{digest[:8]}"


def default_grid() -> list[dict]:
    """20 threshold triples around the field's 17/18/19, nearest first."""
    center = tuple(FIELD_CENTER.values())
    axes = [range(c - 1, c + 2) for c in center]

    def distance(t: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        return sum(abs(v - c) for v, c in zip(t, center, strict=True)), t

    triples = sorted(itertools.product(*axes), key=distance)
    return [dict(zip(FIELD_CENTER, t, strict=True)) for t in triples[:DEFAULT_SIZE]]


def default_template(python: str = sys.executable) -> list[str]:
    """The reference workload with the field's flags, thresholds as placeholders."""
    argv = [python, "-m", WORKLOAD_MODULE, *FIELD_ARGS]
    for name in FIELD_CENTER:
        argv[argv.index(f"--{name}") + 1] = "{" + name + "}"
    return argv


GRID_MAX_BYTES = 256 << 20  # a grid of 100,000 entries is a few MB


def _read(path: Path) -> str:
    """The grid file's text: a regular file only (a FIFO would block, /dev/zero never
    ends), at most GRID_MAX_BYTES."""
    try:
        kind = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"bad grid file {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(kind):
        raise InputError(f"bad grid file {str(path)!r}: not a regular file (a directory, "
                         "FIFO or device)")
    data = untrusted.read_bytes(path, GRID_MAX_BYTES + 1)
    if len(data) > GRID_MAX_BYTES:
        raise InputError(f"bad grid file {str(path)!r}: larger than "
                         f"{GRID_MAX_BYTES >> 20} MiB")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InputError(f"bad grid file {str(path)!r}: not UTF-8 text") from None


def load(path: str | Path) -> list[dict]:
    path = Path(path)
    text = _read(path)
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
            data = data.get("evaluation", data.get("evaluations"))
        else:
            data = untrusted.loads(text)
            if isinstance(data, dict):
                data = data.get("evaluations")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"bad grid file {str(path)!r}: {exc}") from None
    except RecursionError:
        raise InputError(f"bad grid file {str(path)!r}: nested too deeply") from None
    return validate(data, str(path))


def validate(data: object, where: str = "grid") -> list[dict]:
    if not isinstance(data, list) or not data:
        raise InputError(f"bad grid {where!r}: expected a non-empty list of parameter tables")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not item:
            raise InputError(f"bad grid {where!r}: entry {i} is not a non-empty table")
        for key, value in item.items():
            if not str(key).isidentifier():
                raise InputError(f"bad grid {where!r}: entry {i} has a bad name {key!r}")
            if not isinstance(value, _SCALARS):
                raise InputError(f"bad grid {where!r}: entry {i} {key}={value!r} is not a "
                                "number, string or boolean")
            if why := _bad_value(value):
                raise InputError(f"bad grid {where!r}: entry {i} {key}: {why}")
    return data


def _bad_value(value: object) -> str | None:
    """Why a value cannot reach a command line: a NUL byte ends an argv string, and the
    kernel refuses one over 128 KiB (E2BIG); inf and NaN are not JSON, so a run could not
    record them."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if isinstance(value, str):
        if "\x00" in value:
            return "the value holds a NUL byte, which no command-line argument can"
        if len(value.encode(errors="surrogatepass")) > MAX_VALUE_BYTES:
            return (f"the value is {len(value):,} characters long: at most "
                    f"{MAX_VALUE_BYTES:,} bytes reach a command line")
    return None


def placeholders(template: list[str]) -> set[str]:
    names = set()
    for part in template:
        try:
            fields = list(string.Formatter().parse(part))
        except ValueError as exc:
            raise InputError(f"bad command template {part!r}: {exc}") from None
        for _, name, spec, conv in fields:
            if name is None:
                continue
            if not name.isidentifier() or spec or conv:
                raise InputError(f"bad placeholder {{{name}}} in {part!r}: use plain {{name}}")
            names.add(name)
    return names


def check(template: list[str], grid: list[dict]) -> None:
    """Every placeholder has a value in every entry, and every grid key is used."""
    wanted = placeholders(template)
    for i, params in enumerate(grid):
        missing = wanted - set(params)
        if missing:
            raise InputError(f"unknown placeholder {{{sorted(missing)[0]}}}: grid entry {i} "
                            f"has no value for it (it has {', '.join(sorted(params))})")
        unused = set(params) - wanted
        if unused:
            raise InputError(f"grid key {sorted(unused)[0]!r} (entry {i}) is not used by the "
                            f"command template: {shlex.join(template)}")


def render(template: list[str], evaluation: Evaluation) -> Command:
    return Command(tuple(part.format(**evaluation.params) for part in template))


class Evaluations(Sequence):
    """The grid's evaluations, made as they are asked for: one object per evaluation in
    flight, not one per entry of the grid."""

    def __init__(self, grid: list[dict], size: int) -> None:
        self.grid, self._size = grid, size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        return Evaluation(index, self.grid[index])

    @property
    def params(self) -> list[dict]:
        """The chosen entries themselves (no copy where the whole grid is chosen)."""
        return self.grid if self._size == len(self.grid) else self.grid[:self._size]


def evaluations(grid: list[dict], max_evals: int | None) -> Evaluations:
    return Evaluations(grid, len(grid) if max_evals is None else min(max_evals, len(grid)))
