"""Runs inside a cgroup-v2-only VM of this machine (see vm.py): the budget cells on the
kinds of host people run, one JSON line per check on stdout.

  root      the harness at the root cgroup (a VM, a bare-metal root shell)
  pod       the harness in a populated cgroup under an ancestor with pids.max 60: what a
            Kubernetes pod limit (or a container's, or a slice's TasksMax) looks like
  nonroot   children of a non-root user (--run-as nobody): the budget is RLIMIT_NPROC

Usage: python tests/hosts/guest.py [--tensorflow real|standin] SCENARIO...
(writes only under /tmp). The pod's TensorFlow check launches the reference workload
(`real`, under hardware KVM) or, under TCG, where importing TF alone takes minutes of
emulated CPU, a stand-in with its thread pattern and peak (tests/fakes/child.py
tf-standin): the check is of the host's cgroup v2 mechanics, not of TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "fakes" / "child.py"
PY = sys.executable


def report(scenario: str, check: str, ok: bool, **facts) -> None:
    print("HOSTCHECK " + json.dumps({"scenario": scenario, "check": check, "ok": bool(ok),
                                     **facts}), flush=True)


def harness(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "harness", *argv], capture_output=True, text=True,
                          cwd="/tmp", check=False,
                          env={**os.environ, "HOME": "/tmp", "PYTHONPATH": str(REPO)})


def launch(scenario: str, name: str, *argv: str) -> list[dict]:
    t0 = time.monotonic()
    done = harness("launch", "--json", "--log-dir", f"/tmp/{scenario}-{name}", *argv)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        print(f"# {scenario}/{name}: no outcome (rc {done.returncode}): {done.stderr[-800:]}",
              flush=True)
        return []
    outcomes = data.get("siblings", [data])
    print(f"# {scenario}/{name}: {[o['verdict'] for o in outcomes]} in "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    return outcomes


def _forks(n: int) -> list[str]:
    """A shell that starts n background jobs: runnable by any user (the venv's Python
    lives under /root here)."""
    return ["--", "sh", "-c", f"for i in $(seq {n}); do sleep 3 & done; wait"]


TENSORFLOW = {"real": [],  # the reference workload: the launch's default command
              "standin": ["--", PY, str(CHILD), "tf-standin"]}
TF_TIMEOUTS = {"real": ["--stall-timeout", "1200", "--timeout", "1500"],  # see below
               "standin": ["--stall-timeout", "120", "--timeout", "300"]}


def budget_cells(scenario: str, tf: str | None = None, run_as: str | None = None) -> None:
    user = ["--run-as", run_as] if run_as else []
    work = _forks(20) if run_as else ["--", PY, str(CHILD), "threads", "32"]
    [one] = launch(scenario, "tasks-limit-8", "--tasks-limit", "8", "--method",
                   "env-isolated", *user, *work) or [{}]
    expected = "RLIMIT_NPROC" if run_as else "pids cgroup"
    report(scenario, "tasks-limit-8", one.get("verdict") == "thread_exhaustion"
           and (one.get("exhausted") or "").startswith(expected),
           verdict=one.get("verdict"), exhausted=one.get("exhausted"),
           evidence=one.get("evidence", [])[:4])
    # Four siblings, one budget that fits one and a half of them.
    work, budget = (_forks(6), "10") if run_as else (
        ["--", PY, str(CHILD), "hold-threads", "20"], "32")
    shared = launch(scenario, "shared-budget", "--siblings", "4", "--tasks-limit", budget,
                    "--method", "env-isolated", *user, *work)
    verdicts = [o["verdict"] for o in shared]
    report(scenario, "shared-budget", len(verdicts) == 4
           and verdicts.count("thread_exhaustion") >= 2, verdicts=verdicts)
    if tf:  # the reference workload (or its stand-in) under a tight budget. Where the real
        # one runs under TCG, importing TF is minutes of silent CPU (the launch took 782 s
        # in a fresh Debian root): its timeouts are the VM's, not a desktop's.
        [real] = launch(scenario, "tensorflow", "--tasks-limit", "12", "--method",
                        "env-isolated", *TF_TIMEOUTS[tf], *TENSORFLOW[tf]) or [{}]
        report(scenario, "tensorflow-tight-budget", real.get("verdict") == "thread_exhaustion",
               tensorflow=tf, verdict=real.get("verdict"),
               evidence=real.get("evidence", [])[:3])


def root(tf: str) -> None:
    budget_cells("root")  # one TensorFlow launch is enough: the pod's
    doctor = json.loads(harness("doctor", "--json").stdout)
    report("root", "doctor", doctor["binding"]["source"].startswith("kernel"),
           binding=doctor["binding"])


def pod(tf: str) -> None:
    """/pod has pids.max 60; the harness runs in /pod/ctr beside another process."""
    (ROOT / "cgroup.subtree_control").write_text("+pids")
    pod_dir = ROOT / "pod"
    pod_dir.mkdir(exist_ok=True)
    (pod_dir / "pids.max").write_text("60")
    (pod_dir / "cgroup.subtree_control").write_text("+pids")
    ctr = pod_dir / "ctr"
    ctr.mkdir(exist_ok=True)
    neighbour = subprocess.Popen(["sleep", "600"])  # the container's other process
    for pid in (os.getpid(), neighbour.pid):
        (ctr / "cgroup.procs").write_text(str(pid))
    try:
        doctor = json.loads(harness("doctor", "--json").stdout)
        binding = doctor["binding"]
        report("pod", "doctor-names-the-ancestor", binding["source"] == "pids cgroup"
               and binding["limit"] == 60 and binding["detail"].startswith(str(pod_dir)),
               binding=binding)
        offered = json.loads(harness("phase2", "node-resources").stdout)["threads"]
        report("pod", "node-resources-within-the-pod", offered <= 60, threads=offered)
        budget_cells("pod", tf=tf)
    finally:
        neighbour.kill()
        neighbour.wait()


def nonroot(tf: str) -> None:
    """Children run as nobody (--run-as): the budget is RLIMIT_NPROC, enforced for real."""
    budget_cells("nonroot", run_as="nobody")


def leftovers() -> None:
    groups = [str(p) for p in ROOT.rglob("harness-*") if p.is_dir()]
    procs = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True,
                           check=False).stdout.splitlines()
    marks = ("-m harness", "harness.launch.parent", "harness.workload", "harness.host.limits",
             "child.py")
    left = [p for p in procs if any(m in p for m in marks)]
    report("all", "nothing-left-behind", not groups and not left, cgroups=groups,
           processes=left)


if __name__ == "__main__":
    args = sys.argv[1:]
    tensorflow = "real"
    if args[:1] == ["--tensorflow"]:
        tensorflow, args = args[1], args[2:]
    for scenario in args:
        {"root": root, "pod": pod, "nonroot": nonroot}[scenario](tensorflow)
    leftovers()
