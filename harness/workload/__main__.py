"""`python -m harness.workload`: the reference training command."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time

from harness import jsonio
from harness.workload import EXIT_FAILED, EXIT_GPU_MEMORY, EXIT_OK, args, data, events, host

STACKS_ENV = "HARNESS_STACKS"


def write_metrics(path: str | None, metrics: dict) -> None:
    """Atomic: a reader sees the old file or the whole new one, never half of it."""
    if path:
        jsonio.write_json(path, metrics, durable=True)


def _register_stack_dump() -> str | None:
    """SIGUSR1 dumps every thread's Python stack into $HARNESS_STACKS (for stall diagnosis)."""
    path = os.environ.get(STACKS_ENV)
    if not path:
        return None
    stacks = open(path, "a")  # noqa: SIM115 - must stay open for the signal handler
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    return "SIGUSR1"


def run(opts, log: events.EventLog) -> int:
    t0 = time.monotonic()
    thresholds = (opts.threshold_I, opts.threshold_P, opts.threshold_R)
    x, y, indicators = data.make(opts.seed, opts.data_percentage)
    keep = data.select(indicators, thresholds)
    needed = opts.cv_folds * 2 if opts.mode == "search" else 2
    if len(keep) < needed:
        message = f"thresholds {thresholds} keep {len(keep)} samples; need at least {needed}"
        log.emit(events.FAILED, reason=message)
        print(f"harness.workload: error: {message}", file=sys.stderr)
        return EXIT_FAILED
    x, y = x[keep], y[keep]

    from harness.workload import train  # TensorFlow loads here, after `start`

    threads = train.configure_threads(opts.host_cores)
    train.seed(opts.seed)
    gpu_check = {"checked": False, "reason": "no GPU visible to TensorFlow"}
    if train.physical_gpus():
        gpu_check = host.gpu_memory_check(opts.min_gpu_memory)
        if gpu_check.get("short"):
            message = (f"GPUs {gpu_check['short']} have less than --min-gpu-memory "
                       f"{opts.min_gpu_memory} GiB free ({gpu_check['free_gib']})")
            log.emit(events.FAILED, reason=message, gpu_memory=gpu_check)
            print(f"harness.workload: error: {message}", file=sys.stderr)
            return EXIT_GPU_MEMORY
    strategy, devices = train.make_strategy(opts.device_mode, opts.cpu_devices)
    log.emit(events.DEVICES, kind=devices.kind, names=devices.names, replicas=devices.replicas,
             physical_gpus=devices.physical_gpus, strategy=devices.strategy, threads=threads,
             gpu_memory=gpu_check, device_bytes=train.device_bytes(devices.names))

    scores = _cross_validate(opts, strategy, devices, x, y, log)
    metrics = {
        "cv_scores": scores,
        "cv_score_mean": sum(scores) / len(scores),
        "n_samples": len(y),
        "thresholds": {"I": opts.threshold_I, "P": opts.threshold_P, "R": opts.threshold_R},
        "devices": {"kind": devices.kind, "names": devices.names, "replicas": devices.replicas},
        "mode": opts.mode,
        "epochs": opts.epochs,
        "seed": opts.seed,
        "duration_s": round(time.monotonic() - t0, 3),
    }
    write_metrics(opts.metrics_out, metrics)
    log.emit(events.COMPLETED, metrics=metrics, device_bytes=train.device_bytes(devices.names))
    if opts.verbosity >= 1:
        print(f"cv_score_mean={metrics['cv_score_mean']:.4f} n_samples={len(y)}", flush=True)
    return EXIT_OK


def _cross_validate(opts, strategy, devices, x, y, log: events.EventLog) -> list[float]:
    """One score per fold; work_started is emitted at the first training step."""
    from harness.workload import train

    if opts.mode == "search":
        splits = data.folds(len(y), opts.cv_folds, opts.seed)
    else:
        splits = [data.holdout(len(y), opts.seed)]
    trainer = train.FoldTrainer(strategy, x.shape[1])
    scores = []
    for fold, (train_idx, val_idx) in enumerate(splits):
        first_step = None
        if fold == 0:
            def first_step():
                log.emit(events.WORK_STARTED, devices=devices.names)
        score = trainer.run_fold(fold, x, y, train_idx, val_idx, opts.epochs,
                                 opts.verbosity, first_step, opts.input_pipeline)
        scores.append(score)
        log.emit(events.FOLD_DONE, fold=fold, score=score)
        # what a search reads live to prune: the running mean after each fold
        log.emit(events.REPORT, step=fold + 1,
                 metrics={"cv_score_mean": sum(scores) / len(scores), "fold_score": score})
        if opts.verbosity >= 1:
            print(f"fold {fold} score={score:.4f}", flush=True)
    return scores


def main(argv: list[str] | None = None) -> int:
    opts = args.parse(argv)
    log = events.EventLog(opts.events)
    stack_signal = _register_stack_dump()
    log.emit(events.START, pid=os.getpid(), ppid=os.getppid(), uid=os.getuid(),
             argv=sys.argv if argv is None else argv, cwd=os.getcwd(),
             limits=host.limits(), pids_cgroup=host.pids_cgroup(), env=host.thread_env(),
             host_cores=opts.host_cores, cpus=len(os.sched_getaffinity(0)),
             stack_signal=stack_signal)
    try:
        return run(opts, log)
    except BaseException as exc:
        if not isinstance(exc, SystemExit):
            log.emit(events.FAILED, reason=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
