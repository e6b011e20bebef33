"""Launch groups: launches that share one condition, one task budget and one supervisor.

prepare() starts a launching parent (it sets up its TF state, then waits),
release() starts the children of several parents at once, outcome() turns what
the supervisor saw into an Outcome, close() kills what is left and removes the
cgroup. The repro harness releases K siblings together; the Phase 2 runner
admits launches one by one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict

from harness import envpolicy
from harness.errors import InputError
from harness.host import cgroup, limits, nvml
from harness.host.proctree import LAUNCH_MARKER_ENV
from harness.launch import methods
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.launch.methods import CATALOGUE
from harness.launch.pending import Pending, wait_ready, write_spec
from harness.supervise import samples
from harness.supervise.files import LaunchFiles
from harness.supervise.gpuwork import GpuWorkProbe
from harness.supervise.supervisor import SAMPLE_INTERVAL_S, Supervisor, Watch
from harness.verdict import probes
from harness.verdict.classify import first_error
from harness.verdict.outcome import Outcome, build

READY_TIMEOUT_S = 300.0  # parents importing/initialising TF on a loaded 2-core box
DEFAULT_TIMEOUT_S = 900.0
DEFAULT_STALL_TIMEOUT_S = 60.0
PARENT_MODULE = "harness.launch.parent"  # the launching parent (python -m ...)




class LaunchGroup:
    """One condition, one budget (pids cgroup / RLIMIT_NPROC), one supervisor."""

    def __init__(self, condition: Condition, timeout_s: float = DEFAULT_TIMEOUT_S,
                 stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
                 sample_interval_s: float = SAMPLE_INTERVAL_S) -> None:
        if timeout_s <= 0 or stall_timeout_s <= 0:
            raise InputError("timeouts must be greater than zero")
        self.condition = condition
        self.user = condition.child_ids()
        self.child_uid = self.user[0] if self.user else os.getuid()
        self.budget = limits.open_budget(condition.limits.tasks, self.child_uid,
                                         condition.budget_backend)
        self.id = uuid.uuid4().hex[:8]
        cgroup.reap_stale()  # groups of runs that were killed with SIGKILL
        self.supervisor = Supervisor(timeout_s, stall_timeout_s, sample_interval_s)
        if self.budget.group is not None:  # cheap to read each tick; RLIMIT_NPROC's is not
            tracked, limit = self.budget.group, self.budget.limit
            self.supervisor.budget = lambda: (tracked.current, limit)
        self.nvml = nvml.Nvml.open()
        self.gpus = self.nvml.gpus() if self.nvml.available else []
        self._count = 0
        self._pending: list[Pending] = []  # prepared, not yet released
        self._released: dict[Watch, Pending] = {}
        self._final_group: dict | None = None

    # -- starting ---------------------------------------------------------------------

    def prepare(self, command: Command, method: str, files: LaunchFiles,
                child_env: dict[str, str] | None = None, grant: int | None = None) -> Pending:
        """Start one launching parent; it sets up its TF state, then waits for release().
        grant: a pids.max of the launch's own inside the budget (needs a pids cgroup)."""
        files.reset()
        if self.user is not None:  # the child writes events/metrics here as another uid
            for path in (files.dir, files.stdout, files.stderr):
                os.chown(path, *self.user)
        cond = self.condition
        # One cgroup per launch inside the shared budget: its pids.events says whether
        # *its* forks were refused; the budget (pids.max) stays the group's.
        own = self.budget.group.child(f"launch-{self._count}") if self.budget.group else None
        if grant is not None and own is not None:
            own.set_max(grant)
        group = str(own.path) if own else None
        spec = CATALOGUE[method]
        # With TF not loaded in the parent, the harness itself is a faithful launching
        # parent for the env-isolated methods: no extra interpreter (~80 ms here).
        direct = spec.direct and cond.parent_tf == "none"
        # A child under limits joins the group through the trampoline; otherwise the
        # launching parent joins the (unlimited, tracking) group itself, so the child
        # needs no trampoline at all and pays no extra exec. A direct child without a
        # trampoline is tracked by ancestry, marker and its own session instead.
        trampoline = bool(self.budget.limit is not None or cond.limits.rlimits() or self.user
                          or (direct and spec.pdeathsig))
        go = {"method": method, "result": str(files.parent_result),
              "child": self._child(command, files, child_env,
                                   group if trampoline else None)}
        marker = f"{cgroup.owner_pid()}:{self.id}:{self._count}"
        self._count += 1
        env = {**cond.parent_env(), LAUNCH_MARKER_ENV: marker}
        record = {"go": go, "env_set": envpolicy.redact_mapping(cond.env),
                  "env_unset": list(cond.unset)}
        cvd = {**env, **go["child"]["env"]}.get("CUDA_VISIBLE_DEVICES")
        if direct:
            write_spec(files, {"launched_by": "harness", **record})
            pending = Pending(files, marker, None, -1, go, method, command, ready=True,
                              parent_env=env, cuda_visible_devices=cvd, launch_cgroup=own)
            self._pending.append(pending)
            return pending
        read_fd, write_fd = os.pipe()
        boot = {"harness_pid": os.getpid(), "parent_tf": cond.parent_tf, "ready_fd": write_fd,
                "join": None if trampoline else group}
        write_spec(files, {**boot, **record})
        with open(files.parent_log, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", PARENT_MODULE, json.dumps(boot)],
                                    stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
                                    pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        pending = Pending(files, marker, proc, read_fd, go, method, command,
                          cuda_visible_devices=cvd, launch_cgroup=own)
        self._pending.append(pending)
        return pending

    def _child(self, command: Command, files: LaunchFiles, child_env: dict[str, str] | None,
               group: str | None) -> dict:
        """methods.Child's fields, as the launching parent receives them (JSON)."""
        return {
            "argv": list(command.argv), "cwd": command.cwd,
            "env": {**command.env, **(child_env or {}),
                    "HARNESS_EVENTS": str(files.events),
                    "HARNESS_METRICS_OUT": str(files.metrics),
                    "HARNESS_STACKS": str(files.stacks)},
            "stdout": str(files.stdout), "stderr": str(files.stderr),
            "workdir": str(files.dir), "group": group,
            "rlimits": self.condition.limits.rlimits(),
            "user": list(self.user) if self.user else None,
        }

    def release(self, pendings: list[Pending], ready_timeout_s: float = READY_TIMEOUT_S
                ) -> list[Watch]:
        """Wait until these parents are ready, then start all their children at once."""
        wait_ready([p for p in pendings if p.parent_env is None],
                    time.monotonic() + ready_timeout_s)
        late = self._late_rlimits()
        # Before any child starts: the devices' state now is each probe's baseline.
        gpu_probes = [GpuWorkProbe(self.nvml, nvml.visible(self.gpus, p.cuda_visible_devices))
                      for p in pendings]
        watches = []
        for pending, gpu_probe in zip(pendings, gpu_probes, strict=True):
            pending.go["child"]["rlimits"].update(late)
            if pending.parent_env is not None:
                self._start_direct(pending)
            else:
                line = (json.dumps(pending.go) + "\n").encode() if pending.ready else b"\n"
                with contextlib.suppress(BrokenPipeError):
                    pending.proc.stdin.write(line)
                    pending.proc.stdin.close()
            watch = Watch(len(self.supervisor.watches), pending.proc, pending.files,
                          pending.marker, gpu_probe,
                          include_root=pending.parent_env is not None)
            self._released[watch] = pending
            self.supervisor.add(watch)
            self._pending.remove(pending)
            watches.append(watch)
        return watches

    def _start_direct(self, pending: Pending) -> None:
        child = methods.Child(**pending.go["child"])
        pending.t_launch = time.time()
        pending.proc = methods.start_isolated(child, pending.parent_env,
                                              CATALOGUE[pending.method].pdeathsig)

    def _late_rlimits(self) -> dict[str, int]:
        """Known only once the parents are up: RLIMIT_NPROC = tasks the uid has + budget."""
        budget = self.budget
        if budget.backend != "rlimit-nproc":
            return {}
        budget.nproc_base = limits.uid_tasks(self.child_uid)
        budget.notes.append(f"RLIMIT_NPROC = {budget.nproc_base} tasks uid {self.child_uid} "
                            f"already had + budget {budget.limit}")
        return {"nproc": budget.nproc_base + budget.limit}

    # -- budget -----------------------------------------------------------------------

    def tasks_in_use(self) -> int | None:
        if self.budget.backend == "rlimit-nproc":
            return limits.uid_tasks(self.child_uid) - (self.budget.nproc_base or 0)
        return self.budget.group.current if self.budget.group else None

    def grant(self, watch: Watch, limit: int) -> bool:
        """Cap a running launch's own cgroup at limit tasks (it keeps what it has; only
        new threads beyond the cap are refused); False where it has no cgroup."""
        own = self._released[watch].launch_cgroup
        if own is None:
            return False
        own.set_max(limit)
        return True

    def headroom(self) -> int | None:
        """Budget minus tasks in use now; None without a budget."""
        used = self.tasks_in_use()
        if self.budget.limit is None or used is None:
            return None
        return self.budget.limit - used

    # -- results ----------------------------------------------------------------------

    def outcome(self, watch: Watch, condition_name: str | None = None) -> Outcome:
        files = watch.files
        pending = self._released[watch]
        group_now = self.budget.group.snapshot() if self.budget.group else self._final_group
        own = self._refusals(pending)
        shared = sum(self._refusals(p) for p in self._released.values())
        # The kernel's peak of the launch's own cgroup (pids.peak, where the kernel has it):
        # exact where sampling can miss short-lived threads.
        launch_peak = pending.launch_cgroup.peak if pending.launch_cgroup else None
        seen = probes.observe(files.events, [files.stdout, files.stderr],
                              pending.command.work_pattern, pending.command.done_pattern)
        result = pending.result(watch.obs.parent_returncode, watch.obs.duration_s)
        outcome = build(
            watch.obs, result, seen, method=pending.method,
            condition=condition_name or self.condition.name,
            command=pending.command.display(),
            budget={**self.budget.record(), "group_at_end": group_now,
                    "refused_this_launch": own, "refused_all_launches": shared,
                    "launch_peak": launch_peak},
            limits=asdict(self.condition.limits), events_max_delta=own,
            gpu_expected=bool(self.gpus),  # on a GPU host, a run without GPU work is flagged
            metrics=probes.read_metrics(files.metrics))
        if shared > own:  # context only: a sibling's refusals are not this launch's evidence
            outcome.evidence.append(f"the shared budget refused {shared - own} thread/process "
                                    "creations of other launches of this group")
        outcome.write(files.outcome)
        samples.write_marks(files, outcome.timeline,
                            None if outcome.verdict == "ok" else first_error(files))
        self._retire(pending)
        return outcome

    def _refusals(self, pending: Pending) -> int:
        """Forks refused to this launch's own processes (its cgroup's pids.events)."""
        if pending.refusals is not None:
            return pending.refusals
        return pending.launch_cgroup.events_local if pending.launch_cgroup else 0

    def _retire(self, pending: Pending) -> None:
        """Keep the launch's count, remove its cgroup (a long Phase 2 run makes many)."""
        if pending.launch_cgroup is not None:
            pending.refusals = pending.launch_cgroup.events_local
            pending.launch_cgroup.remove()
            pending.launch_cgroup = None

    def close(self) -> None:
        """Stop everything still running, then remove the cgroup."""
        self.supervisor.interrupt("launch group closed")
        for pending in list(self._pending):  # started but never released
            if pending.proc is None:
                continue
            pending.proc.kill()
            pending.proc.wait()
            if pending.ready_fd >= 0:
                os.close(pending.ready_fd)
                pending.ready_fd = -1
        for pending in self._released.values():  # counts outlive the cgroups
            if pending.launch_cgroup is not None:
                pending.refusals = pending.launch_cgroup.events_local
        if self.budget.group:
            self._final_group = self.budget.group.snapshot()
            self.budget.group.kill_all()
            self.budget.group.remove()
        self.nvml.close()

    def __enter__(self) -> LaunchGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
