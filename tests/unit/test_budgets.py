"""Task budgets as the kernel enforces them, with real pids cgroups: per-sibling truth
inside one shared budget, and limits set on an ancestor (a pod, a slice, a container)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.host import cgroup, headroom
from harness.host.limits import Limits
from harness.launch.condition import Condition

from .conftest import fake


def test_a_sibling_that_crashes_by_itself_is_crash_not_exhaustion(run_fake, tmp_path):
    """One sibling exhausts the shared budget; the others segfault on their own. Each
    sibling's own cgroup says whose forks were refused."""
    outcomes = run_fake("", command=fake("first-exhausts", str(tmp_path)),
                        condition=Condition(limits=Limits(tasks=20), siblings=3))
    verdicts = sorted(o.verdict for o in outcomes)
    assert verdicts == ["crash", "crash", "thread_exhaustion"], [o.evidence for o in outcomes]
    exhausted = next(o for o in outcomes if o.verdict == "thread_exhaustion")
    assert exhausted.budget["refused_this_launch"] > 0
    assert exhausted.exhausted == "pids cgroup (pids.max)"
    for crashed in (o for o in outcomes if o.verdict == "crash"):
        assert crashed.signal == 11 and crashed.budget["refused_this_launch"] == 0
        assert any("other launches of this group" in e for e in crashed.evidence)


def _in_cgroup(group: cgroup.PidsCgroup, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.host.limits", "--cgroup", str(group.path),
                           "--", sys.executable, "-m", "harness", *argv],
                          capture_output=True, text=True, check=False)


def test_a_limit_on_an_ancestor_binds_and_is_named():
    """A pod's limit sits on the pod cgroup; the container's own cgroup says max."""
    outer = cgroup.create(None)
    try:
        pod = outer.child("kubepods-burstable-pod1234.slice")
        pod.set_max(60)
        container = pod.child("cri-containerd-abc.scope")
        assert container.max is None
        done = _in_cgroup(container, "doctor", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        binding = report["binding"]
        assert binding["source"] == "pids cgroup" and binding["limit"] == 60
        assert binding["detail"].startswith(str(pod.path))
        assert binding["origin"] == "Kubernetes pod" and "podPidsLimit" in binding["fix"]
        assert [g["path"] for g in report["pids_cgroups"]][:2] == [str(container.path),
                                                                   str(pod.path)]
        assert "pids-cgroup-limit" in {r["id"] for r in report["risks"]}
        offered = _in_cgroup(container, "phase2", "node-resources")
        assert json.loads(offered.stdout)["threads"] <= 60  # not the kernel's threads-max
    finally:
        outer.kill_all()
        outer.remove()


def test_origin_is_read_from_the_cgroup_name():
    from pathlib import Path

    cases = {"kubepods-burstable-pod1.slice": "Kubernetes pod",
             "docker-0123.scope": "container", "user-1000.slice": "systemd user slice",
             "train.service": "systemd unit", "pod": "cgroup"}
    for name, origin in cases.items():
        assert headroom.origin_of(Path("/sys/fs/cgroup") / name)[0].startswith(origin), name
