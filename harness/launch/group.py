"""Launch groups: the one way to run launches. Launches that share one condition, one task
budget and one supervisor.

start() prepares each launch (a launching parent that sets up its TF state and waits, or
nothing for a direct launch) and then starts all their children at once; wait() supervises
for a while and returns the outcomes of the launches that ended, each built once,
complete, and written once; run() is start() and wait() until every launch ended. close()
kills what is left and removes the cgroups. The repro harness starts K siblings together;
the Phase 2 runner starts launches one by one and may cap one's grant while it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import asdict, replace

from harness import envpolicy
from harness.errors import InputError
from harness.host import cgroup, limits, nvml
from harness.host.proctree import LAUNCH_MARKER_ENV
from harness.launch import methods
from harness.launch.condition import Condition
from harness.launch.defaults import DEFAULT_STALL_TIMEOUT_S, DEFAULT_TIMEOUT_S
from harness.launch.methods import CATALOGUE
from harness.launch.pending import Launch, Pending, spawn_parent, wait_ready, write_spec
from harness.supervise import samples
from harness.supervise.gpuwork import GpuWorkProbe
from harness.supervise.logcap import LOG_CAP_BYTES
from harness.supervise.supervisor import SAMPLE_INTERVAL_S, Supervisor, Watch
from harness.verdict import probes
from harness.verdict.calls import read_calls
from harness.verdict.classify import first_error
from harness.verdict.outcome import LaunchFacts, Outcome, build

READY_TIMEOUT_S = 300.0  # parents importing/initialising TF on a loaded 2-core box

__all__ = ["DEFAULT_STALL_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "Launch", "LaunchGroup"]


class LaunchGroup:
    """One condition, one budget (pids cgroup / RLIMIT_NPROC), one supervisor."""

    def __init__(self, condition: Condition, timeout_s: float = DEFAULT_TIMEOUT_S,
                 stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
                 sample_interval_s: float = SAMPLE_INTERVAL_S,
                 log_cap_bytes: int = LOG_CAP_BYTES) -> None:
        if timeout_s <= 0 or stall_timeout_s <= 0:
            raise InputError("timeouts must be greater than zero")
        self.condition = condition
        self.user = condition.child_ids()
        self.child_uid = self.user[0] if self.user else os.getuid()
        self.budget = limits.open_budget(condition.limits.tasks, self.child_uid,
                                         condition.budget_backend)
        self.id = uuid.uuid4().hex[:8]
        cgroup.reap_stale()  # groups of runs that were killed with SIGKILL
        self.supervisor = Supervisor(timeout_s, stall_timeout_s, sample_interval_s,
                                     log_cap_bytes)
        if self.budget.group is not None:  # cheap to read each tick; RLIMIT_NPROC's is not
            tracked, limit = self.budget.group, self.budget.limit
            self.supervisor.budget = lambda: (tracked.current, limit)
        self.nvml = nvml.Nvml.open()
        self.gpus = self.nvml.gpus() if self.nvml.available else []
        self._count = 0
        self._pending: list[Pending] = []  # prepared, not yet released
        self._released: dict[Watch, Pending] = {}
        self._refused_before = 0  # by launches whose outcome was built (and forgotten)
        self._final_group: dict | None = None

    # -- running ----------------------------------------------------------------------

    def run(self, launches: list[Launch]) -> list[Outcome]:
        """Start the launches together, supervise them until every one ended (an
        interrupt stops them all, recorded in each); their outcomes, in order."""
        watches = self.start(launches)
        self.supervisor.run()
        ended = dict(self.wait(0.0))
        return [ended[w] for w in watches]

    def start(self, launches: list[Launch]) -> list[Watch]:
        """Prepare every launch, then start all their children at once."""
        limits.check_open_files(self.running + len(launches))
        return self._release([self._prepare(launch) for launch in launches])

    def wait(self, timeout_s: float) -> list[tuple[Watch, Outcome]]:
        """Supervise for up to timeout_s; the launches that ended, with their outcomes."""
        if not any(w.done for w in self._released):  # none stopped since (a pruned one)
            self.supervisor.wait(timeout_s)  # sleeps where nothing runs (a retry's back-off)
        if self.supervisor.running:
            self.supervisor.tick()
        ended = [w for w in self._released if w.done]
        return [(w, self._finish(w)) for w in ended]

    def stop(self, watch: Watch, reason: str) -> bool:
        """Stop one launch's whole tree now, recording why; its outcome comes from wait()."""
        return self.supervisor.stop(watch, reason)

    def interrupt(self, reason: str) -> None:
        """Stop every running launch now; their outcomes say why (wait() returns them)."""
        self.supervisor.interrupt(reason)

    @property
    def running(self) -> int:
        return len(self.supervisor.running)

    # -- starting ---------------------------------------------------------------------

    def _prepare(self, launch: Launch) -> Pending:
        """One launch's cgroup and launching parent; a direct launch needs no parent."""
        files, cond = launch.files, self.condition
        files.reset(self.user)
        index, self._count = self._count, self._count + 1
        # One cgroup per launch inside the shared budget: its pids.events says whether
        # *its* forks were refused; the budget (pids.max) stays the group's.
        own = self.budget.group.child(f"launch-{index}") if self.budget.group else None
        if launch.grant is not None and own is not None:
            own.set_max(launch.grant)
        spec = CATALOGUE[launch.method]
        # With TF not loaded in the parent, the harness itself is a faithful launching
        # parent for the env-isolated methods: no extra interpreter (~80 ms here).
        direct = spec.direct and cond.parent_tf == "none"
        # A child under limits joins its cgroup through the trampoline, and so does a
        # direct child (no launching parent to join for it): nothing it starts can leave
        # the cgroup. Otherwise the launching parent joins the (unlimited, tracking)
        # cgroup itself, and the child needs no trampoline at all.
        # An in-process method has no child to exec: its launching parent joins the launch's
        # cgroup at boot and applies the rlimits to itself.
        trampoline = not spec.in_process and bool(
            self.budget.limit is not None or cond.limits.rlimits() or self.user
            or (direct and (spec.pdeathsig or own is not None)))
        group = str(own.path) if own else None
        child = self._child(launch, group if trampoline else None)
        go = {"method": launch.method, "result": str(files.parent_result), "child": child}
        marker = f"{cgroup.owner_pid()}:{self.id}:{index}"
        env = {**cond.parent_env(), LAUNCH_MARKER_ENV: marker}
        record = {"go": go, "env_set": envpolicy.redact_mapping(cond.env),
                  "env_unset": list(cond.unset)}
        pending = Pending(launch, launch.index if launch.index is not None else index, marker,
                          None, -1, go, launch_cgroup=own, child_only=trampoline,
                          grant=launch.grant, cuda_visible_devices={
                              **env, **child["env"]}.get("CUDA_VISIBLE_DEVICES"))
        if direct:
            write_spec(files, {"launched_by": "harness", **record})
            pending.ready, pending.parent_env = True, env
        else:
            boot = {"harness_pid": os.getpid(), "parent_tf": cond.parent_tf,
                    "join": None if trampoline else group}
            pending.proc, pending.ready_fd = spawn_parent(files, boot, record, env)
        self._pending.append(pending)
        return pending

    def _child(self, launch: Launch, group: str | None) -> dict:
        """methods.Child's fields, as the launching parent receives them (JSON)."""
        files = launch.files
        return {
            "argv": list(launch.command.argv), "cwd": launch.command.cwd,
            "env": {**launch.command.env, **launch.child_env,
                    "HARNESS_EVENTS": str(files.events),
                    "HARNESS_METRICS_OUT": str(files.metrics),
                    "HARNESS_STACKS": str(files.stacks)},
            "stdout": str(files.stdout), "stderr": str(files.stderr),
            "workdir": str(files.dir), "group": group,
            "rlimits": self.condition.limits.rlimits(),
            "user": list(self.user) if self.user else None, "calls": launch.calls,
        }

    def _release(self, pendings: list[Pending], ready_timeout_s: float = READY_TIMEOUT_S
                 ) -> list[Watch]:
        """Wait until these parents are ready, then start all their children at once."""
        wait_ready([p for p in pendings if not p.direct], time.monotonic() + ready_timeout_s)
        late = self._late_rlimits()
        # Before any child starts: the devices' state now is each probe's baseline.
        gpu_probes = [GpuWorkProbe(self.nvml, nvml.visible(self.gpus, p.cuda_visible_devices))
                      for p in pendings]
        watches = []
        for pending, gpu_probe in zip(pendings, gpu_probes, strict=True):
            pending.go["child"]["rlimits"].update(late)
            if pending.direct:
                assert pending.parent_env is not None  # that is what makes it direct
                child = methods.Child(**pending.go["child"])
                pending.t_launch = time.time()
                pending.proc = methods.start_isolated(child, pending.parent_env,
                                                      CATALOGUE[pending.launch.method].pdeathsig)
            else:
                line = (json.dumps(pending.go) + "\n").encode() if pending.ready else b"\n"
                # Its launching parent, started with stdin=PIPE in _prepare.
                assert pending.proc is not None and pending.proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    pending.proc.stdin.write(line)
                    pending.proc.stdin.close()
            # In-process, the launching parent is the work: its own process counts.
            watch = Watch(pending.index, pending.proc, pending.files, pending.marker, gpu_probe,
                          direct=pending.direct or pending.in_process,
                          cgroup=pending.launch_cgroup)
            self._released[watch] = pending
            self.supervisor.add(watch)
            self._pending.remove(pending)
            watches.append(watch)
        return watches

    def _late_rlimits(self) -> dict[str, int]:
        """Known only once the parents are up: RLIMIT_NPROC = tasks the uid has + budget."""
        budget = self.budget
        if budget.backend != "rlimit-nproc":
            return {}
        assert budget.limit is not None  # open_budget picks rlimit-nproc only with tasks
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
        """Cap a running launch's own cgroup at limit tasks (new threads past it are
        refused); False where it has no cgroup."""
        pending = self._released[watch]
        if pending.launch_cgroup is None:
            return False
        pending.launch_cgroup.set_max(limit)
        pending.grant = limit
        return True

    def headroom(self) -> int | None:
        """Budget minus tasks in use now; None without a budget."""
        used = self.tasks_in_use()
        if self.budget.limit is None or used is None:
            return None
        return self.budget.limit - used

    # -- results ----------------------------------------------------------------------

    def _finish(self, watch: Watch) -> Outcome:
        """The launch's outcome: built once from everything known of it, written once."""
        pending = self._released[watch]
        files = pending.files
        own, kernel_peak = pending.counts()
        shared = self._refused_before + sum(p.counts()[0] for p in self._released.values())
        group_now = self.budget.group.snapshot() if self.budget.group else self._final_group
        facts = LaunchFacts(
            method=pending.launch.method, index=pending.index,
            condition=pending.launch.condition or self.condition.name,
            command=pending.command.display(),
            budget={**self.budget.record(), "group_at_end": group_now,
                    "refused_this_launch": own, "refused_all_launches": shared,
                    "launch_peak": kernel_peak},
            limits=asdict(self.condition.limits), grant=pending.grant,
            gpu_expected=bool(self.gpus),  # on a GPU host, a run without GPU work is flagged
            notes=pending.launch.notes, calls=read_calls(files.calls))
        seen = probes.observe(files.events, [files.stdout, files.stderr],
                              pending.command.work_pattern, pending.command.done_pattern)
        result = pending.result(watch.obs.parent_returncode, watch.obs.duration_s)
        outcome = build(watch.obs, result, seen, facts, probes.read_metrics(files.metrics))
        if (unsaved := outcome.save(files)) is not None:  # a full log dir: kept in memory
            outcome = replace(outcome, evidence=[*outcome.evidence,
                                                 f"outcome.json not written: {unsaved}"])
        samples.write_marks(files, outcome.timeline,
                            None if outcome.verdict.ok else first_error(files))
        pending.retire()
        self._refused_before += own
        del self._released[watch]  # built once, then forgotten: a long run holds what runs
        self.supervisor.forget(watch)
        return outcome

    def close(self) -> None:
        """Stop everything still running, then remove the cgroups, whatever failed."""
        try:
            self._stop_all()
        finally:
            for pending in self._released.values():  # counts outlive the cgroups
                pending.keep_counts()
            if self.budget.group:
                self._final_group = self.budget.group.snapshot()
                self.budget.group.kill_all()
                self.budget.group.remove()
            self.nvml.close()

    def _stop_all(self) -> None:
        self.supervisor.interrupt("launch group closed")
        for pending in list(self._pending):  # started but never released
            if (proc := pending.proc) is not None:
                proc.kill()
                proc.wait()
            if pending.ready_fd >= 0:
                os.close(pending.ready_fd)
                pending.ready_fd = -1

    def __enter__(self) -> LaunchGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
