"""`harness doctor`: why would Phase 2 fail on this machine, before it runs?

Collects who runs, the limits that count threads (RLIMIT_NPROC, pids cgroups,
kernel threads-max), address-space/stack limits, thread and device env vars,
TensorFlow and GPUs, then derives `risks`, each with an id, a sentence and the
fix. Nothing here launches anything unless --probe is given.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from harness import envpolicy
from harness.host import cgroup, headroom, nvml, rlimit
from harness.host.limits import uid_tasks
from harness.workload.host import THREAD_ENV

_MANY_THREADS_CPUS = 16  # pools sized per core: above this one child needs hundreds
_STACK_RISK_BYTES = 256 << 20


def _rlimits() -> dict[str, dict[str, int | None]]:
    return {name: {"soft": soft, "hard": hard} for name, (soft, hard) in rlimit.current().items()}


def _pids_cgroups() -> list[dict]:
    """This process's pids cgroup and each ancestor's, own first, with what set them."""
    found = []
    for group in cgroup.ancestors():
        data = group.snapshot()
        data["origin"] = headroom.origin_of(group.path)[0]  # systemd's detail: live_limits
        found.append(data)
    return found


def _tensorflow() -> dict:
    if importlib.util.find_spec("tensorflow") is None:
        return {"importable": False, "version": None}
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            return {"importable": True, "version": importlib.metadata.version(dist)}
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"importable": True, "version": None}


def _gpus() -> tuple[list[dict] | None, str]:
    with nvml.Nvml.open() as handle:
        if not handle.available:
            return None, handle.reason
        return [{"index": g.index, "name": g.name, "uuid": g.uuid,
                 "memory_free_gib": round(g.memory_free / nvml.GIB, 2),
                 "memory_total_gib": round(g.memory_total / nvml.GIB, 2),
                 "compute_mode": g.compute_mode} for g in handle.gpus()], ""


def risks(report: dict) -> list[dict]:
    """Each risk: id, what it means here, and the fix."""
    found: list[dict] = []

    def add(rid: str, text: str, fix: str) -> None:
        found.append({"id": rid, "risk": text, "fix": fix})

    _task_risks(report, add)
    _env_risks(report, add)
    _address_space_risks(report, add)
    _device_risks(report, add)
    return found


def _task_risks(report: dict, add) -> None:
    """Limits that count threads: who runs, RLIMIT_NPROC, the pids cgroup."""
    nproc = report["rlimits"]["nproc"]["soft"]
    if report["is_root"]:
        add("root-ulimit-u-not-enforced",
            "Running as root: RLIMIT_NPROC (ulimit -u) is not enforced for uid 0, so raising "
            "or lowering it changes nothing here; only a pids cgroup limits tasks.",
            "Check the pids cgroup below (containers, systemd TasksMax, k8s pod pid limit); "
            "test task budgets with `harness launch --tasks-limit N` (pids cgroup) or "
            "--run-as a non-root user.")
    elif nproc is not None and nproc - report["tasks"]["uid"] < 4 * 50:
        add("ulimit-u-low",
            f"RLIMIT_NPROC is {nproc} and uid {report['uid']} already has "
            f"{report['tasks']['uid']} tasks: only {nproc - report['tasks']['uid']} threads "
            "are left for every training child together.",
            "Raise `ulimit -u` (limits.conf nproc) or run fewer children at once "
            "(harness phase2 run admits them against this headroom).")
    for lim in report["live_limits"]:
        if lim["source"] != "pids cgroup":
            continue
        add("pids-cgroup-limit",
            f"A pids cgroup above this process, {lim['detail']} ({lim['origin']}), has "
            f"pids.max={lim['limit']} with {lim['in_use']} in use ({lim['headroom']} free): "
            "every thread of every child counts against it.",
            f"{lim['fix'][0].upper()}{lim['fix'][1:]}, or cap per-child threads and admit "
            "children by headroom (harness phase2 run).")
    for group in report["pids_cgroups"]:
        if group.get("events_max"):
            add("pids-cgroup-hit",
                f"{group['path']}: pids.events shows max {group['events_max']}: thread "
                "creation has already been refused there.",
                "This is the 'pthread_create() failed (11)' of the incident; see above.")
    binding = report["binding"]
    if not binding["source"].startswith("kernel"):  # a kernel-wide limit binds only here
        add("binding-limit",
            f"The limit that binds first is {binding['source']} ({binding['origin']}, "
            f"{binding['detail']}): {binding['headroom']} more tasks may start.",
            binding["fix"])


def _env_risks(report: dict, add) -> None:
    """Thread and device environment variables."""
    cvd = report["env"].get("CUDA_VISIBLE_DEVICES")
    if cvd == "":
        add("cuda-visible-devices-empty",
            "CUDA_VISIBLE_DEVICES is set but empty: every GPU is hidden and TensorFlow "
            "silently trains on CPU (0 % GPU utilisation, no error).",
            "Unset it, or list the GPUs to use (CUDA_VISIBLE_DEVICES=0,1).")
    thread_vars = {k for k in report["env"] if k.startswith(("TF_NUM_", "OMP_"))}
    if report["cpus"] >= _MANY_THREADS_CPUS and not thread_vars:
        add("uncapped-thread-pools",
            f"{report['cpus']} schedulable CPUs and no TF_NUM_INTRAOP_THREADS / "
            "TF_NUM_INTEROP_THREADS / OMP_NUM_THREADS: each TF child sizes its pools for "
            "the whole host (hundreds of threads per child).",
            "Set explicit caps per child (harness phase2 run does: CPUs / concurrent jobs).")


def _address_space_risks(report: dict, add) -> None:
    """Thread stacks are address space: RLIMIT_AS and RLIMIT_STACK."""
    as_soft = report["rlimits"]["as"]["soft"]
    if as_soft is not None:
        add("rlimit-as",
            f"RLIMIT_AS is {as_soft >> 20} MiB: thread stacks are address space; "
            "pthread_create fails with the same EAGAIN as a task limit once it is used up.",
            "Raise or remove `ulimit -v`, or lower the stack size per thread.")
    stack = report["rlimits"]["stack"]["soft"]
    if stack is None or stack >= _STACK_RISK_BYTES:
        size = "unlimited" if stack is None else f"{stack >> 20} MiB"
        add("rlimit-stack-large",
            f"RLIMIT_STACK is {size}: glibc sizes every new thread's stack from it at "
            "program start (32 MiB on x86-64 when unlimited), so hundreds of TF threads "
            "reserve a lot of address space.",
            "Use `ulimit -s 8192` for training children.")


def _device_risks(report: dict, add) -> None:
    """GPUs, TensorFlow, and what a probe measured."""
    for gpu in report["gpus"] or []:
        if gpu["compute_mode"] in ("EXCLUSIVE_PROCESS", "EXCLUSIVE_THREAD", "PROHIBITED"):
            add("gpu-compute-mode",
                f"GPU {gpu['index']} is in {gpu['compute_mode']} compute mode: only one "
                "process can use it, concurrent children fail to create a context.",
                "nvidia-smi -c DEFAULT (admin), or run one child per GPU.")
    if not report["tensorflow"]["importable"]:
        add("tensorflow-missing", "TensorFlow is not importable in this environment.",
            "pip install tensorflow (or phase2-harness[gpu] on GPU hosts).")
    probe = report.get("probe")
    if probe and probe.get("concurrent_children") is not None \
            and probe["concurrent_children"] < 2:
        add("budget-fits-few-children",
            f"One child peaks at {probe['peak_threads']} threads; the live budget "
            f"({probe['budget_source']}) fits {probe['concurrent_children']} at once.",
            "Raise the limit, cap threads, or let harness phase2 run admit children.")


def collect(probe: bool = False) -> dict:
    uid = os.getuid()
    tight = headroom.live_limits(ask_systemd=True)
    groups = _pids_cgroups()
    gpus, gpu_reason = _gpus()
    report = {
        "uid": uid,
        "is_root": uid == 0,
        "rlimits": _rlimits(),
        "tasks": {"uid": uid_tasks(uid), "this_process": len(os.listdir("/proc/self/task"))},
        "pids_cgroup": groups[0] if groups else None,
        "pids_cgroups": groups,
        "threads_max": int(Path("/proc/sys/kernel/threads-max").read_text()),
        "pid_max": int(Path("/proc/sys/kernel/pid_max").read_text()),
        "cpus": len(os.sched_getaffinity(0)),
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        "tensorflow": _tensorflow(),
        "gpus": gpus,
        "gpu_reason": gpu_reason or None,
        "live_limits": [lim.record() for lim in tight],
        "binding": min(tight, key=lambda lim: lim.headroom).record(),
    }
    if probe:
        report["probe"] = _probe()
    report["risks"] = risks(report)
    return report


def _probe() -> dict:
    import tempfile

    from harness.launch import command
    from harness.launch import spec as launch

    with tempfile.TemporaryDirectory(prefix="harness-doctor-") as tmp:
        [outcome] = launch.run(launch.LaunchSpec(command.reference(), "env-isolated",
                                                 log_dir=Path(tmp)))
    tight = headroom.tightest()
    peak = outcome.peak_threads
    return {"verdict": outcome.verdict, "peak_threads": peak,
            "budget_source": tight.source, "headroom": tight.headroom,
            "concurrent_children": tight.headroom // peak if peak else None}


def print_report(report: dict) -> None:
    """Tables and sentences for people; --json has everything."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=min(100, Console().width))
    root = " (root: ulimit -u is not enforced)" if report["is_root"] else ""
    console.print(f"[bold]who[/]: uid {report['uid']}{root}, {report['cpus']} CPUs, uid "
                  f"tasks {report['tasks']['uid']}", highlight=False)
    limits = Table(title="Task limits over this process (the first to bind is marked)")
    for column in ("limit", "where", "set by", "in use / max", "free"):
        limits.add_column(column, overflow="fold")
    for lim in report["live_limits"]:
        mark = "[bold red]> [/]" if lim == report["binding"] else ""
        limits.add_row(mark + lim["source"], lim["detail"], lim["origin"],
                       f"{lim['in_use']} / {lim['limit']}", str(lim["headroom"]))
    console.print(limits)
    rlimits = ", ".join(f"{name} {pair['soft'] if pair['soft'] is not None else 'unlimited'}"
                        for name, pair in report["rlimits"].items())
    console.print(f"[bold]rlimits[/] (soft): {rlimits}", highlight=False)
    env = envpolicy.redact_mapping(report["env"])
    console.print("[bold]thread/device env[/]: " + (", ".join(f"{k}={v!s}" for k, v in
                                                            env.items()) or "none set"),
                  highlight=False)
    tf = report["tensorflow"]
    console.print(f"[bold]tensorflow[/]: {tf['version'] if tf['importable'] else 'missing'}",
                  highlight=False)
    gpus = report["gpus"]
    console.print("[bold]gpus[/]: " + (", ".join(
        f"{g['index']} {g['name']} {g['memory_free_gib']}/{g['memory_total_gib']} GiB free "
        f"({g['compute_mode']})" for g in gpus) if gpus else f"none ({report['gpu_reason']})"),
        highlight=False)
    if report.get("probe"):
        probe = report["probe"]
        console.print(f"[bold]probe[/]: one child {probe['verdict']}, peak "
                      f"{probe['peak_threads']} threads; the {probe['budget_source']} fits "
                      f"{probe['concurrent_children']} at once", highlight=False)
    console.print(f"[bold]risks[/] ({len(report['risks'])}):")
    for risk in report["risks"]:
        console.print(f"  [red]{risk['id']}[/]: {risk['risk']}\n    fix: {risk['fix']}",
                      highlight=False)
