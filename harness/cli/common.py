"""Command-line plumbing shared by `harness` and `harness phase2`: exit codes, usage
errors as one line, argument parsers whose errors name the value, signals."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from typing import NoReturn

from harness.errors import InputError
from harness.supervise.logcap import LOG_CAP_BYTES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(InputError):
    """Bad arguments, as argparse words them: the message is the whole line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def arg(parse: Callable, name: str) -> Callable[[str], object]:
    """Wrap a ValueError-raising parser for argparse (its message names the value)."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = name
    return convert


def number(unit: str, positive: bool) -> Callable[[str], float]:
    """A float parser whose errors name the value: > 0 (positive) or >= 0."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"bad {unit} {text!r}: expected a number") from None
        if positive and not value > 0:
            raise ValueError(f"bad {unit} {text!r}: must be greater than zero")
        if not positive and not value >= 0:
            raise ValueError(f"bad {unit} {text!r}: must not be negative")
        return value

    return parse


seconds = number("seconds", positive=True)


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"bad --env {text!r}: expected KEY=VALUE")
    return key, value


class _Interrupts:
    """First SIGTERM/SIGINT raises KeyboardInterrupt; later ones are remembered, not raised,
    so cleanup always finishes."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signum
            raise KeyboardInterrupt(signal.Signals(signum).name)


INTERRUPTS = _Interrupts()


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


def _log_cap(text: str) -> int:
    from harness.host.limits import parse_size

    value = parse_size(text)
    if value < 1 << 20:
        raise ValueError(f"bad --log-cap {text!r}: at least 1M")
    return value


def add_supervision_options(p: argparse.ArgumentParser, timeout: float, stall: float) -> None:
    p.add_argument("--timeout", type=arg(seconds, "seconds"), default=timeout,
                   help=f"overall limit per launch (default {timeout:g} s)")
    p.add_argument("--log-cap", type=arg(_log_cap, "size"), default=LOG_CAP_BYTES,
                   help="each launch's stdout/stderr kept on disk, at most: the middle of a "
                        "longer log is dropped, its head and tail kept (default 1G)")
    p.add_argument("--stall-timeout", type=arg(seconds, "seconds"), default=stall,
                   help=f"no output, events, log growth or writes for this long = stalled, "
                        f"idle or busy (default {stall:g} s)")
