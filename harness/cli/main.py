"""`harness doctor | methods | launch | probe | diagnose | phase2 run | phase2 plan`.

Every usage error is one line on stderr and exit 2, before anything launches.
SIGTERM and SIGINT stop running launches, write partial outcomes, and exit
128+signal.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path

from harness.cli import diagnose as diagnose_cli
from harness.cli import phase2 as phase2_cli
from harness.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    INTERRUPTS,
    Parser,
    UsageError,
    add_supervision_options,
    arg,
    env_pair,
    split_command,
)
from harness.errors import HostError, InputError
from harness.verdict.verdicts import tally


def add_limit_options(p: argparse.ArgumentParser) -> None:
    from harness.host.limits import parse_count, parse_size, parse_tasks

    p.add_argument("--tasks-limit", type=arg(lambda t: parse_tasks(t, "task limit"), "tasks"),
                   help="task/thread budget shared by the launch group")
    p.add_argument("--as-limit", type=arg(parse_size, "size"), help="RLIMIT_AS, e.g. 2G")
    p.add_argument("--stack-limit", type=arg(parse_size, "size"),
                   help="RLIMIT_STACK (also glibc's default thread stack size), e.g. 64M")
    p.add_argument("--nofile-limit", type=arg(lambda t: parse_count(t, "nofile limit"), "n"))
    p.add_argument("--budget-backend", choices=["auto", "cgroup", "nproc"], default="auto")
    p.add_argument("--run-as", metavar="USER", help="run the child as USER (root only)")


def build_parser() -> argparse.ArgumentParser:
    from harness.launch.defaults import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S, PARENT_TF_STATES

    parser = Parser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    sub.add_parser("methods", help="list the invocation methods")

    launch = sub.add_parser("launch", help="launch a command through one method")
    launch.add_argument("--method", default="subprocess-pipes")
    add_limit_options(launch)
    launch.add_argument("--siblings", type=arg(lambda t: _count(t, "siblings"), "k"),
                        default=1, help="identical launches started together, one budget")
    launch.add_argument("--calls", type=arg(_calls, "n"),
                        help="in-parent: how many times the parent runs the command itself "
                             "(default 3, at most 1000)")
    launch.add_argument("--parent-tf", choices=PARENT_TF_STATES, default="none")
    launch.add_argument("--env", type=arg(env_pair, "KEY=VALUE"), action="append",
                        default=[], help="set in the launching parent's environment")
    launch.add_argument("--unset", action="append", default=[],
                        help="remove from the launching parent's environment")
    launch.add_argument("--cwd")
    launch.add_argument("--work-pattern", help="regex on output: device work started")
    launch.add_argument("--done-pattern", help="regex on output: run completed")
    launch.add_argument("--log-dir", default="logs/launch")
    launch.add_argument("--force", action="store_true",
                        help="empty a --log-dir the harness did not make")
    launch.add_argument("--json", action="store_true", help="print the outcome(s) as JSON")
    add_supervision_options(launch, DEFAULT_TIMEOUT_S, DEFAULT_STALL_TIMEOUT_S)

    probe = sub.add_parser("probe", help="run the command once; measure its peak threads")
    probe.add_argument("--log-dir", default="logs/probe")
    probe.add_argument("--force", action="store_true",
                       help="empty a --log-dir the harness did not make")
    probe.add_argument("--json", action="store_true")
    add_supervision_options(probe, DEFAULT_TIMEOUT_S, DEFAULT_STALL_TIMEOUT_S)

    doctor = sub.add_parser("doctor", help="preflight: why would Phase 2 fail here?")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument("--strict", action="store_true", help="exit 1 if any risk is found")
    doctor.add_argument("--probe", action="store_true",
                        help="measure one child's peak threads and the concurrency it allows")

    phase2_cli.add_parser(sub)
    diagnose_cli.add_parser(sub)
    return parser


def _calls(text: str) -> int:
    from harness.launch.inparent import MAX_CALLS

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CALLS:
        raise ValueError(f"bad --calls {text!r}: must be a whole number 1..{MAX_CALLS}")
    return value


def _count(text: str, name: str) -> int:
    from harness.host.limits import parse_count

    return parse_count(text, name)


def _print_outcomes(outcomes, as_json: bool) -> None:
    if as_json:
        records = [o.record() for o in outcomes]
        if len(records) == 1:
            print(json.dumps(records[0], indent=2, default=str))
        else:
            summary = tally(o.verdict for o in outcomes)
            print(json.dumps({"siblings": records, "summary": summary}, indent=2, default=str))
        return
    from harness.report.tables import print_outcomes

    print_outcomes(outcomes)


def cmd_methods(_: argparse.Namespace) -> int:
    from harness.launch.methods import CATALOGUE

    width = max(map(len, CATALOGUE))
    for method in CATALOGUE.values():
        print(f"{method.name:<{width}}  {method.summary}")
    return EXIT_OK


def _command(args: argparse.Namespace, argv: list[str] | None):
    from harness.launch import command

    if not argv:
        if getattr(args, "work_pattern", None) or getattr(args, "done_pattern", None):
            raise InputError("--work-pattern/--done-pattern need a command after --")
        return command.reference()
    return command.parse(argv, cwd=getattr(args, "cwd", None),
                         work_pattern=getattr(args, "work_pattern", None),
                         done_pattern=getattr(args, "done_pattern", None))


def cmd_launch(args: argparse.Namespace, argv: list[str] | None) -> int:
    from harness.host.limits import Limits
    from harness.launch import spec as launch
    from harness.launch.condition import Condition

    condition = Condition(
        name="cli",
        limits=Limits(args.tasks_limit, args.as_limit, args.stack_limit, args.nofile_limit),
        siblings=args.siblings, parent_tf=args.parent_tf, env=dict(args.env),
        unset=tuple(args.unset), run_as=args.run_as, budget_backend=args.budget_backend)
    spec = launch.LaunchSpec(_command(args, argv), args.method, condition, Path(args.log_dir),
                             args.timeout, args.stall_timeout, force=args.force,
                             log_cap_bytes=args.log_cap,
                             calls=args.calls)
    outcomes = launch.run(spec)
    _print_outcomes(outcomes, args.json)
    return EXIT_OK if all(o.verdict.ok for o in outcomes) else EXIT_FAILED


def cmd_probe(args: argparse.Namespace, argv: list[str] | None) -> int:
    from harness.launch import spec as launch

    spec = launch.LaunchSpec(_command(args, argv), "env-isolated", log_dir=Path(args.log_dir),
                             timeout_s=args.timeout, stall_timeout_s=args.stall_timeout,
                             log_cap_bytes=args.log_cap,
                             force=args.force)
    outcomes = launch.run(spec)
    _print_outcomes(outcomes, args.json)
    return EXIT_OK if outcomes[0].verdict.ok else EXIT_FAILED


def cmd_doctor(args: argparse.Namespace, _argv: list[str] | None) -> int:
    from harness.cli import doctor

    report = doctor.collect(probe=args.probe)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        doctor.print_report(report)
    return EXIT_FAILED if args.strict and report["risks"] else EXIT_OK


def _prog(args: argparse.Namespace | None) -> str:
    """`harness launch`, `harness phase2 run`: who says an error."""
    words = [getattr(args, name, None) for name in ("cmd", "verb")]
    return " ".join(["harness", *(w for w in words if w)])


FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # a write the disk refused


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, command = split_command(argv)
    INTERRUPTS.install()
    args = None
    try:
        args = build_parser().parse_args(own)
        if command is not None and args.cmd in ("methods", "doctor"):
            raise InputError("takes no command after --")
        if args.cmd == "methods":
            return cmd_methods(args)
        handlers = {"launch": cmd_launch, "probe": cmd_probe, "doctor": cmd_doctor,
                    "diagnose": diagnose_cli.run}
        if args.cmd in handlers:
            code = handlers[args.cmd](args, command)
        else:
            code = phase2_cli.run(args, command)
    except UsageError as exc:  # argparse's own line
        print(str(exc).splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except (InputError, HostError) as exc:  # the error family: one line, nothing started
        print(f"{_prog(args)}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno not in FULL:
            raise  # a bug, not the disk: its traceback says where
        # The disk filled while the run wrote: everything it started was stopped and its
        # cgroups removed on the way out; the ledger keeps its whole lines.
        print(f"{_prog(args)}: error: {exc.strerror} writing {exc.filename or 'a file'}: "
              "free space and run again (phase2 run: --resume keeps every finished "
              "evaluation)", file=sys.stderr)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = EXIT_FAILED
    if INTERRUPTS.received is not None:
        return 128 + INTERRUPTS.received
    return code
