"""`harness diagnose [FILE|DIR|-]...`: the thread-exhaustion verdict on logs from a run
that did not go through the harness. Exit 0 nothing found, 1 found, 2 bad input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import EXIT_FAILED, EXIT_OK
from harness.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("diagnose", help="was a thread or process refused? judge logs of any run")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR|-",
                   help="log files, directories (walked), or - for stdin")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="list every file, not only findings")


def _inputs(paths: list[str]) -> list[str]:
    """Every path checked before anything is read: one bad one is exit 2."""
    from harness.host.mounts import PSEUDO, filesystem

    for path in paths:
        if path != "-" and not Path(path).exists():
            raise InputError(f"no such file or directory: {path!r}")
        if path != "-" and (kind := filesystem(path)) in PSEUDO:
            raise InputError(f"{path!r} is on {kind}, the kernel's live state, not a log: "
                             "reading its files can block or consume them (/proc/kmsg)")
    if paths.count("-") > 1:
        raise InputError("stdin (-) can be read once")
    return paths


def _diagnose(paths: list[str]) -> list:
    from harness.verdict import diagnose

    found = []
    for path in paths:
        if path == "-":
            found.append(diagnose.diagnose_stream("<stdin>", sys.stdin.buffer))
        elif Path(path).is_dir():
            found += [diagnose.diagnose_file(p) for p in diagnose.walk(Path(path))]
        else:
            found.append(diagnose.diagnose_file(Path(path)))
    return found


def _host() -> dict | None:
    """This host's binding task limit and its fix: right where the failure happened."""
    from harness.host import headroom

    try:
        return headroom.tightest().record()
    except OSError:
        return None


def run(args: argparse.Namespace, command: list[str] | None) -> int:
    if command is not None:
        raise InputError("takes no command after --")
    files = _diagnose(_inputs(args.paths))
    host = _host()
    hits = [f for f in files if f.verdict]
    if args.json:
        print(json.dumps({"files": [f.record() for f in files], "found": len(hits),
                          "host": host}, indent=2, default=str))
    else:
        from harness.report.tables import print_diagnoses

        print_diagnoses(files if args.all else hits, len(files), host)
    return EXIT_FAILED if hits else EXIT_OK
