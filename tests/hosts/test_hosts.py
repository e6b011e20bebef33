"""Task budgets on a real cgroup v2 host: this machine booted in a VM with cgroup v1 off,
at the root cgroup, as a container in a "pod" (an ancestor with pids.max 60, the harness
in a populated child) and as a non-root user (RLIMIT_NPROC). Run by `nox -s hosts`."""

from __future__ import annotations

import json
import sys

import pytest

from . import vm

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(2400)]

EXPECTED = {
    "root": ("tasks-limit-8", "shared-budget", "doctor"),
    "nonroot": ("tasks-limit-8", "shared-budget"),
    "pod": ("doctor-names-the-ancestor", "node-resources-within-the-pod", "tasks-limit-8",
            "shared-budget", "tensorflow-tight-budget"),
    "all": ("nothing-left-behind",),
}


@pytest.fixture(scope="module")
def checks(request) -> dict[tuple[str, str], dict]:
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
        "capturemanager")

    def say(line: str) -> None:  # past pytest's capture: a fixture's output is the test's
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"hosts: {line}")

    how = vm.accel()
    # TensorFlow itself only where the VM has hardware KVM: under TCG its import alone is
    # minutes, and the check is of cgroup v2, so a stand-in with its thread pattern runs.
    tensorflow = "real" if how[1] == "KVM" else "standin"
    out = vm.run(f"{sys.executable} tests/hosts/guest.py --tensorflow {tensorflow} root "
                 "nonroot pod", timeout_s=2100, say=say, how=how)
    for line in out.splitlines():
        if line.startswith("#"):
            say(line.removeprefix("# "))
    found = {}
    for line in out.splitlines():
        if line.startswith("HOSTCHECK "):
            record = json.loads(line.removeprefix("HOSTCHECK "))
            found[(record["scenario"], record["check"])] = record
    return found


@pytest.mark.parametrize(("scenario", "check"),
                         [(s, c) for s, names in EXPECTED.items() for c in names])
def test_on_cgroup_v2(checks, scenario, check):
    assert (scenario, check) in checks, f"the VM never reported {scenario}/{check}"
    record = checks[(scenario, check)]
    assert record["ok"], json.dumps(record, indent=1)
