"""What the local executor needs of the processes it runs, as a contract (in the spirit of
xdist's scheduler protocol): a launch group fills it for real children (GroupLauncher),
a test fills it with simulated ones. The executor decides; the launcher starts, watches
and grants."""

from __future__ import annotations

from typing import Protocol

from harness.host import headroom
from harness.host.limits import Budget
from harness.launch.group import Launch, LaunchGroup
from harness.supervise.supervisor import Watch
from harness.verdict.outcome import Outcome
from harness.workload import events as ev


class Launcher(Protocol):
    @property
    def budget(self) -> Budget:
        """The run's task budget and the cgroup it grants from (group None: no grants)."""

    def headroom(self) -> int | None:
        """Tasks the budget has free now (None: no task limit anywhere)."""

    def start(self, launches: list[Launch]) -> list[Watch]:
        """Start these children now; a watch for each, in order."""

    def wait(self, timeout_s: float) -> list[tuple[Watch, Outcome]]:
        """Supervise for up to timeout_s; the launches that ended, with their outcomes."""

    def grant(self, watch: Watch, limit: int) -> bool:
        """Give a running child a pids.max of its own; False where the kernel refused."""

    def interrupt(self, reason: str) -> None:
        """Stop every running child now, recording why."""

    def stop(self, watch: Watch, reason: str) -> bool:
        """Stop one running child's whole tree now (SIGTERM, a grace, SIGKILL), recording
        why; its outcome comes from wait() as any other's."""

    def work_started(self, watch: Watch) -> bool:
        """Whether this child has said its device work started."""


class GroupLauncher:
    """A LaunchGroup as the local executor's Launcher."""

    def __init__(self, group: LaunchGroup) -> None:
        self.group = group
        self._events: dict[Watch, tuple[int, bool]] = {}  # read up to, work started

    @property
    def budget(self) -> Budget:
        return self.group.budget

    def headroom(self) -> int | None:
        """The budget's own headroom, or without one the host's tightest limit's."""
        if self.group.budget.limit is not None:
            return self.group.headroom()
        return headroom.tightest().headroom

    def start(self, launches: list[Launch]) -> list[Watch]:
        return self.group.start(launches)

    def wait(self, timeout_s: float) -> list[tuple[Watch, Outcome]]:
        ended = self.group.wait(timeout_s)
        for watch, _ in ended:
            self._events.pop(watch, None)
        return ended

    def grant(self, watch: Watch, limit: int) -> bool:
        return self.group.grant(watch, limit)

    def interrupt(self, reason: str) -> None:
        self.group.interrupt(reason)

    def stop(self, watch: Watch, reason: str) -> bool:
        return self.group.stop(watch, reason)

    def work_started(self, watch: Watch) -> bool:
        """From the events appended since the last look: a tick reads what is new, never
        the whole file again (a child with 100,000 events lines cost 11 CPU-s per 16 s)."""
        offset, started = self._events.get(watch, (0, False))
        if not started:
            new, offset = ev.read_new(watch.files.events, offset)
            started = any(e["event"] == ev.WORK_STARTED for e in new)
            self._events[watch] = (offset, started)
        return started
