"""A tiny fake child for fast tests (no TensorFlow): `python child.py MODE [ARG]`.

It speaks the workload's events protocol (HARNESS_EVENTS) so probes work, and
each MODE reproduces one failure shape the harness must classify.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time


def emit(event, **fields):
    path = os.environ.get("HARNESS_EVENTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"event": event, "t": time.time(), "pid": os.getpid(),
                                **fields}) + "\n")


REFERENCE_PEAK = 22  # the reference workload's measured peak (threads, main included)
TF_ABORT = ("F0000 env.cc:84] Check failed: ret == 0 (11 vs. 0)Thread tf_Compute creation "
            "via pthread_create() failed.")


def tf_standin(peak):
    """The reference workload's thread pattern without TensorFlow, for a VM under TCG where
    importing TF alone takes minutes: its pools made up front in real threads up to its
    peak, a refused thread ending as TF's does (its Check-failed line, then abort), then a
    short fit between work_started and completed."""
    emit("start")
    gate = threading.Event()
    try:
        for i in range(peak - 1):  # the main thread is the first
            threading.Thread(target=gate.wait, name=f"tf_Compute/{i}", daemon=True).start()
    except RuntimeError:  # CPython's "can't start new thread": pthread_create said EAGAIN
        print(TF_ABORT, file=sys.stderr, flush=True)
        os.abort()
    emit("work_started")
    time.sleep(1.0)
    gate.set()
    print("training done")
    emit("completed", metrics={"score": 1.0})


def main(mode, arg):
    if mode == "tf-standin":
        return tf_standin(int(arg or REFERENCE_PEAK))
    emit("start")
    emit("work_started")
    if mode == "ok":
        print("training done")
    elif mode == "exit":
        sys.exit(int(arg))
    elif mode == "signal":
        os.kill(os.getpid(), getattr(signal, arg))
    elif mode == "thread-fail":  # what TF prints when pthread_create fails, then abort
        print(TF_ABORT, file=sys.stderr, flush=True)
        os.abort()
    elif mode == "thread-fail-once":  # the first run exhausts, a retry (arg exists) passes
        if not os.path.exists(arg):
            open(arg, "w").close()
            main("thread-fail", "")
        print("training done")
    elif mode == "threads":  # really create threads: fails under a small task budget
        gate = threading.Event()
        for _ in range(int(arg)):
            threading.Thread(target=gate.wait, daemon=True).start()
        gate.set()
    elif mode == "hold-threads":  # N threads alive together for 2 s: siblings overlap
        gate = threading.Event()
        threads = [threading.Thread(target=gate.wait, args=(2.0,)) for _ in range(int(arg))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elif mode == "raise":  # fails with a Python exception
        raise RuntimeError("the fake child failed on purpose")
    elif mode == "leak-thread":  # leaves one thread running per run (in-parent sees it grow)
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    elif mode == "abort-second":  # the first run completes, the second (arg exists) aborts
        if os.path.exists(arg):
            os.abort()
        open(arg, "w").close()
    elif mode == "report":  # arg "VALUE:STEPS": a report a step (0.2 s apart), then done
        value, steps = arg.split(":")
        for step in range(1, int(steps) + 1):
            time.sleep(0.2)
            emit("report", step=step, metrics={"loss": float(value) / step})
        with open(os.environ["HARNESS_METRICS_OUT"], "w") as f:
            json.dump({"loss": float(value) / int(steps)}, f)
    elif mode == "sleep":  # hangs in C
        time.sleep(float(arg))
    elif mode == "deadlock":  # hangs in Python: a lock taken twice
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()
    elif mode == "spin":  # busy, never finishes, says nothing: a busy hang
        while True:
            pass
    elif mode == "burn":  # arg CPU seconds, then done
        end = time.process_time() + float(arg)
        while time.process_time() < end:
            pass
    elif mode == "progress":  # busy and saying so, never finishes: a timeout, not a hang
        while True:
            print("step", flush=True)
            time.sleep(0.2)
    elif mode == "flood":  # arg bytes of output
        chunk = b"x" * 1023 + b"\n"
        for _ in range(int(arg) // 1024):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    elif mode == "grandchild":  # a background grandchild keeps our stdout/stderr open
        subprocess.Popen(["sleep", arg])
        print("child exits, grandchild lives on", flush=True)
    elif mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(float(arg))
    elif mode == "stderr-file":  # say what a file holds on stderr, then fail
        with open(arg) as f:
            sys.stderr.write(f.read() + "\n")
        sys.exit(1)
    elif mode == "first-exhausts":  # siblings: the first to claim arg/ runs out of threads,
        try:                          # the others crash by themselves (SIGSEGV)
            os.mkdir(os.path.join(arg, "claimed"))
        except FileExistsError:
            import ctypes
            ctypes.string_at(0)
        main("threads", "200")
    elif mode == "print-env":
        print(json.dumps(dict(os.environ)))
    elif mode == "forge-start":  # a start event naming another process and a killing signal
        pid, sig = arg.split(":")
        emit("start", pid=int(pid), stack_signal=sig)
        time.sleep(600)  # stalls: the harness dumps stacks
    elif mode == "bad-events":  # malformed events among good ones, then completes
        path = os.environ["HARNESS_EVENTS"]
        with open(path, "a") as f:
            for bad in ('{"event": "work_started", "t": "now"}', '{"event": ["a"], "t": 1}',
                        '{"event": "completed", "t": 1e400}', '[1, 2]', '"x"'):
                f.write(bad + "\n")
        with open(os.environ["HARNESS_METRICS_OUT"], "w") as f:
            f.write('{"score": NaN, "cv_score_mean": "high"}')
    else:
        sys.exit(f"unknown mode {mode}")
    emit("completed", metrics={"score": 1.0})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
