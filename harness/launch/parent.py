"""The launching parent: `python -m harness.launch.parent SPEC.json`, like the field's
auto_polish_dataset_v2.py.

It sets up its own state first (environment pollution; TensorFlow not loaded,
imported, or initialised with its thread pools up), tells the harness it is
ready, waits for "go" so that siblings start together, starts the child through
one method and writes the method's result to `parent.json`. The harness
process itself never loads TensorFlow.

Protocol: argv[1] is a small JSON object (harness_pid, parent_tf, ready_fd); the
environment is already the condition's (pollution applied by the harness); fd
ready_fd gets b"ready\\n"; stdin then carries one JSON line, the "go": method,
result path and the child (values may be secret, so they never touch disk).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from harness import jsonio
from harness.host import cgroup
from harness.host.pdeathsig import die_with_parent
from harness.launch import methods

PARENT_RESULT = "parent.json"


def setup_tensorflow(state: str) -> dict:
    """Bring TensorFlow to the parent state the condition asks for."""
    if state == "none":
        return {"tensorflow": None}
    import tensorflow as tf

    info = {"tensorflow": tf.__version__}
    if state == "initialized":  # one op runs: the runtime, its devices and thread pools are up
        info["op_result"] = float(tf.reduce_sum(tf.ones((64, 64)) @ tf.ones((64, 64))))
    return info


def _handshake(ready_fd: int) -> dict | None:
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    line = sys.stdin.readline()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # children must not inherit the control pipe
    os.close(devnull)
    return json.loads(line) if line.strip() else None


def main(argv: list[str]) -> int:
    boot = json.loads(argv[0])
    if not die_with_parent(boot["harness_pid"]):  # must not outlive its supervisor
        return 1
    if boot.get("join"):  # the unlimited tracking group: the child inherits it
        cgroup.PidsCgroup(Path(boot["join"]), 0).join()
    started = time.time()
    parent_state = setup_tensorflow(boot["parent_tf"])
    go = _handshake(boot["ready_fd"])
    if go is None:  # the harness gave up on this launch before it started
        return 1
    child = methods.Child(**go["child"])
    method = methods.CATALOGUE[go["method"]]
    launched = time.time()
    try:
        result = method.run(child)
    except OSError as exc:  # exec failures surface here for the subprocess methods
        result = methods.MethodResult(launch_error=f"{type(exc).__name__}: {exc}")
    record = {
        "method": method.name,
        "parent_pid": os.getpid(),
        "parent_state": parent_state,
        "t_parent_start": started,
        "t_launch": launched,
        "t_end": time.time(),
        **result.record(),
    }
    jsonio.write_json(Path(go["result"]), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
