"""Boot this machine's own filesystem in a VM with cgroup v1 switched off (virtme-ng),
run one command there, and return what it printed.

Needs Debian's qemu-system-x86, linux-image-amd64 and busybox-static, and virtme-ng
from PyPI. KVM is used where it works, else TCG (qemu's software emulation), and the
run says which and why. Where /dev/kvm is there but no hardware KVM module is loaded
(kvm_intel, kvm_amd), KVM is not tried: the machines this suite was written on expose
kvm_pvm (a pagetable-based KVM for running inside a cloud VM without nested hardware
virtualisation), which runs only PVM-built guest kernels. Debian's kernel under it stops
with "KVM internal error. Suberror: 1" (an emulation failure, at int3_selftest or an
XSAVE instruction) after crawling through early boot; with `-cpu host` qemu refuses at
once ("failed to set MSR 0x10a").
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

APT_PACKAGES = ("qemu-system-x86", "linux-image-amd64", "busybox-static")
INSTALL = f"apt-get install -y {' '.join(APT_PACKAGES)} && pip install virtme-ng"
BOOT_ARGS = ("--memory", "4G", "--cpus", "2", "--append", "cgroup_no_v1=all")
KVM_PROBE_S = 30.0  # a KVM boot of `true` takes seconds; TCG alone takes ~20 s


class VmUnavailable(RuntimeError):
    """What is missing, with the command that installs it."""


def kernel() -> str:
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    if not found:
        raise VmUnavailable(f"no kernel under /boot: {INSTALL}")
    return found[-1]


def vng() -> str:
    found = shutil.which("vng") or shutil.which("vng", path=os.path.dirname(sys.executable))
    if not found or not shutil.which("qemu-system-x86_64") or not shutil.which("busybox"):
        raise VmUnavailable(f"virtme-ng, qemu or busybox is missing: {INSTALL}")
    return found


def _vng(accel: list[str], command: str, timeout_s: float) -> subprocess.CompletedProcess:
    """vng in a session of its own, so that a timeout kills qemu too, not only vng."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    proc = subprocess.Popen([vng(), *accel, "--run", kernel(), *BOOT_ARGS, "--", command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


HARDWARE_KVM = ("kvm_intel", "kvm_amd")


def accel() -> tuple[list[str], str]:
    """(vng's arguments, what ran and why): KVM if a VM boots with it, else TCG."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ["--disable-kvm"], "TCG: no usable /dev/kvm"
    loaded = [m for m in os.listdir("/sys/module") if m.startswith("kvm")]
    if not any(m in loaded for m in HARDWARE_KVM):
        return ["--disable-kvm"], (f"TCG: /dev/kvm is {', '.join(loaded) or 'no module'}, "
                                   "not hardware KVM (kvm_intel, kvm_amd); see vm.py")
    try:
        probe = _vng([], "true", KVM_PROBE_S)
    except subprocess.TimeoutExpired:
        return ["--disable-kvm"], f"TCG: a KVM boot of `true` took over {KVM_PROBE_S:g} s"
    if probe.returncode != 0:
        return ["--disable-kvm"], f"TCG: a KVM boot failed: {probe.stderr.strip()[-200:]}"
    return [], "KVM"


def run(command: str, timeout_s: float, say=print,
        how: tuple[list[str], str] | None = None) -> str:
    """stdout of command run as root in the VM (the working directory is the repository);
    `say` is told whether KVM or TCG runs it, and why. `how` is accel()'s answer where the
    caller asked it already."""
    args, how_said = how or accel()
    say(f"the VM runs under {how_said}")
    done = _vng(args, command, timeout_s)
    if done.returncode != 0 and "HOSTCHECK" not in done.stdout:
        raise RuntimeError(f"the VM failed (rc {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout
