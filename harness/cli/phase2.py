"""`harness phase2 run` and `harness phase2 plan`."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from harness.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_supervision_options,
    arg,
    env_pair,
    number,
    seconds,
)


def _jobs(text: str) -> int | None:
    if text == "auto":
        return None
    from harness.host.limits import parse_count

    return parse_count(text, "--jobs")


def add_parser(sub) -> None:
    from harness.host.limits import parse_count, parse_tasks
    from harness.launch.defaults import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S, PARENT_TF_STATES
    from harness.phase2.executors import names as executor_names
    from harness.phase2.strategy import STRATEGIES

    gib = arg(number("GiB", positive=False), "GiB")
    amount = arg(number("amount", positive=False), "n")
    phase2 = sub.add_parser("phase2", help="run a grid of training evaluations reliably")
    verbs = phase2.add_subparsers(dest="verb", required=True, parser_class=type(phase2))
    for verb, text in (("run", "run the grid"), ("plan", "measure one child and plan")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("--grid", help="TOML or JSON list of parameter tables")
        p.add_argument("--max-evals", type=arg(lambda t: parse_count(t, "--max-evals"), "n"))
        p.add_argument("--strategy", choices=list(STRATEGIES), default="runner")
        p.add_argument("--tasks-budget",
                       type=arg(lambda t: parse_tasks(t, "--tasks-budget"), "n"),
                       help="impose one shared task budget on the whole run")
        p.add_argument("--jobs", type=arg(_jobs, "n|auto"), default=None,
                       help="most evaluations at once (default auto: the CPU count)")
        p.add_argument("--out", default="phase2-out")
        p.add_argument("--json", action="store_true")
        p.add_argument("--no-plan-cache", action="store_true",
                       help="neither read nor write per-child peaks in the user's cache dir")
        add_supervision_options(p, DEFAULT_TIMEOUT_S, DEFAULT_STALL_TIMEOUT_S)
        if verb == "run":
            p.add_argument("--resume", action="store_true",
                           help="continue the run in --out: skip finished evaluations")
            p.add_argument("--retry-failed", action="store_true",
                           help="with --resume: run evaluations that finished non-ok again")
            p.add_argument("--metric", default="cv_score_mean",
                           help="metrics-file key that ranks evaluations")
            p.add_argument("--min-gpu-memory", type=gib,
                           help="GiB each GPU must keep free to admit a child "
                                "(default: the command's --min-gpu-memory)")
            p.add_argument("--parent-tf", choices=PARENT_TF_STATES, default="none",
                           help="reproduce a field parent: TF state of the launching parents")
            p.add_argument("--env", type=arg(env_pair, "KEY=VALUE"), action="append",
                           default=[], help="set in the launching parents' environment")
            p.add_argument("--unset", action="append", default=[])
            p.add_argument("--progress", choices=["auto", "bar", "lines"], default="auto")
            p.add_argument("--prune-above", type=arg(_prune_rule, "METRIC=VALUE@STEP"),
                           help=PRUNE_DESC)
            p.add_argument("--deadline", type=arg(seconds, "seconds"), default=None,
                           help="for the whole grid: then what runs is stopped, what is "
                                "queued is left for --resume, and the summary says so")
            p.add_argument("--executor", choices=executor_names(), default="local",
                           help="where evaluations run: this host, or a Ray cluster")
            p.add_argument("--ray-address",
                           help="with --executor ray: the cluster to join (e.g. auto, "
                                "HOST:6379); default: start one on this host for this run")
            p.add_argument("--cpus-per-eval", type=amount, default=1.0,
                           help="with --executor ray: CPUs each evaluation requests")
            p.add_argument("--gpus-per-eval", type=amount, default=0.0,
                           help="with --executor ray: GPUs each evaluation requests")
    _add_node_resources(verbs, parse_count)


def _add_node_resources(verbs, parse_count) -> None:
    resources = verbs.add_parser(
        "node-resources", help="the Ray resources this node offers evaluations, as JSON for "
                               "ray start --resources")
    resources.add_argument("--num-cpus", type=arg(lambda t: parse_count(t, "--num-cpus"), "n"),
                           help="the --num-cpus the node's ray start will use "
                                "(default: this host's CPUs)")


PRUNE_DESC = ("stop an evaluation whose reported METRIC is above VALUE at step STEP or "
              "later (verdict pruned), e.g. loss=0.5@2")


def _prune_rule(text: str) -> tuple[str, float, int]:
    """METRIC=VALUE@STEP: stop an evaluation that reports METRIC > VALUE at STEP or later."""
    import re

    found = re.fullmatch(r"([A-Za-z_][\w.-]{0,63})=([-+0-9.eE]+)@(\d{1,9})", text)
    try:
        value = float(found[2]) if found else math.nan
    except ValueError:
        value = math.nan
    if not found or not math.isfinite(value):
        raise ValueError(f"bad --prune-above {text!r}: use METRIC=VALUE@STEP, e.g. loss=0.5@2")
    return found[1], value, int(found[3])


def _pruner(rule: tuple[str, float, int] | None):
    """The --prune-above rule as a Pool's on_report (None: nothing is pruned)."""
    if rule is None:
        return None
    metric, above, at = rule
    return lambda step, metrics: step >= at and metrics.get(metric, -math.inf) > above


def _options(args: argparse.Namespace):
    from harness.phase2.options import RunOptions

    extra = {}
    if args.verb == "run":
        extra = dict(resume=args.resume, retry_failed=args.retry_failed, metric=args.metric,
                     min_gpu_memory=args.min_gpu_memory, parent_tf=args.parent_tf,
                     env=dict(args.env), unset=tuple(args.unset),
                     live={"auto": None, "bar": True, "lines": False}[args.progress],
                     executor=args.executor, ray_address=args.ray_address,
                     cpus_per_eval=args.cpus_per_eval, gpus_per_eval=args.gpus_per_eval,
                     deadline_s=args.deadline)
    return RunOptions(strategy=args.strategy, tasks_budget=args.tasks_budget, jobs=args.jobs,
                      timeout_s=args.timeout, stall_timeout_s=args.stall_timeout,
                      log_cap_bytes=args.log_cap, out=Path(args.out), max_evals=args.max_evals,
                      plan_cache=not args.no_plan_cache, **extra)


def run(args: argparse.Namespace, command: list[str] | None) -> int:
    from harness.errors import InputError
    from harness.phase2 import grid as grids

    if args.verb == "node-resources":
        from harness.phase2.executors.ray.cluster import node_resources

        if command is not None:
            raise InputError("takes no command after --")
        print(json.dumps(node_resources(args.num_cpus)))
        return EXIT_OK
    if getattr(args, "retry_failed", False) and not args.resume:
        raise InputError("--retry-failed needs --resume")
    grid = grids.load(args.grid) if args.grid else None
    opts = _options(args)
    # the machinery (psutil, rich, the executors) only once the input is known good
    from harness.phase2 import runner
    from harness.phase2.layout import Layout

    if args.verb == "plan":
        result = runner.plan(command, grid, opts)
        _print_plan(result, args.json)
        return EXIT_OK if result.concurrency > 0 else EXIT_FAILED
    results = runner.run(command, grid, opts, on_report=_pruner(args.prune_above))
    if args.json:  # results.json itself, streamed: a large grid's is never one string
        with open(Layout(Path(args.out)).results) as written:
            shutil.copyfileobj(written, sys.stdout)
    else:
        from harness.phase2.view.progress import print_summary

        print_summary(results)
    from harness.verdict.verdicts import Verdict

    summary = results["summary"]
    pruned = summary["by_verdict"].get(Verdict.PRUNED, 0)  # stopped on purpose: no failure
    return EXIT_OK if summary["ok"] + pruned == summary["total"] else EXIT_FAILED


def _print_plan(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.record(), indent=2))
        return
    print(f"budget:      {result.budget_limit} tasks ({result.budget_source}), "
          f"{result.tasks_in_use} in use")
    print(f"per child:   peak {result.per_child_peak} threads, need {result.per_child_need}")
    print(f"concurrency: {result.concurrency} (jobs {result.jobs}, {result.cpus} CPUs)")
    print("reasoning:")
    for line in result.reasoning:
        print(f"  - {line}")
