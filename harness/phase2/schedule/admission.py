"""Admission: whether one more child starts beside the running ones, and the grant (a
pids.max of its own) it starts under.

Pure arithmetic on what the executor sees now, so the local executor asks it with live
numbers and the policy's property tests with simulated ones. The rule: a child alone
starts uncapped (alone is the best it can get); beside others, every child holds a
grant of its own and the grants together never exceed the budget, so a child that
outgrows its grant dies alone and never takes a neighbour's share. Without a cgroup to
grant from (RLIMIT_NPROC), each running child's need is reserved instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Child:
    """What admission needs to know of one running child."""

    grant: int | None  # its own pids.max; None: uncapped (it started alone)
    threads_now: int
    peak: int


@dataclass(frozen=True)
class Admit:
    grant: int | None  # the newcomer's own pids.max; None: it shares the budget
    cap: int | None = None  # the uncapped running child's pids.max from now on
    reserved: int = 0  # tasks the running children may still take


def admit(running: Sequence[Child], ask: int | None, free: int | None, total: int | None,
          can_grant: bool, share: bool = False) -> Admit | None:
    """One more child now, and how; None: not now.

    ask: the tasks one child needs (the policy's need or prior; None: unknown, so the
    first child is measured alone). free: the budget's headroom now (None: no task limit
    anywhere). total: the tasks the run's children may hold together. share: the ask
    is a guess and this child takes the last place beside the uncapped first one, so
    what the budget leaves over both asks is split between their grants, up to the ask
    again each (no other child could use it; a guess a little low kills nobody).
    """
    if not running or free is None:
        return Admit(None)
    if ask is None:
        return None  # the first child is still being measured
    if not can_grant or total is None:
        reserved = sum(max(0, max(ask, c.peak) - c.threads_now) for c in running)
        return Admit(None, reserved=reserved) if free - reserved >= ask else None
    granted = sum(c.grant for c in running if c.grant is not None)
    reserved = sum(max(0, c.grant - c.threads_now) for c in running if c.grant is not None)
    uncapped = next((c for c in running if c.grant is None), None)
    cap, grant = None, ask
    if uncapped is not None:
        cap = total - granted - ask  # what the budget leaves it beside the others' grants
        if cap < max(ask, uncapped.threads_now):
            return None
        if share:  # at most the ask again: a guess off by 2x survives, a leak stays small
            half = min(ask, (cap - max(ask, uncapped.threads_now)) // 2)
            cap, grant = cap - half, ask + half
        reserved += cap - uncapped.threads_now
    elif total - granted < ask:
        return None
    if free - reserved < grant:
        return None
    return Admit(grant, cap, reserved)


@dataclass(frozen=True)
class Wait:
    """Not now, and why."""

    reason: str


@dataclass(frozen=True)
class Scene:
    """What an executor sees when one more task asks to start."""

    running: Sequence[Child]
    most: int | None  # the most children at once (None: no bound)
    exclusive: bool  # a running child runs alone: it died within a guess before
    after_guess: bool  # this task died within a guess before: it runs alone now
    ask: int | None  # the need's ask(): the tasks one child is granted
    need_known: bool  # a need, not only a prior, is known
    need_confirmed: bool  # ...and a child of this run that completed confirmed it
    free: int | None  # the budget's headroom now
    total: int | None  # the tasks the run's children may hold together
    can_grant: bool  # each child can have a pids.max of its own

    @property
    def usable_ask(self) -> int | None:
        """The ask admission may use: a prior needs grants to be safe; without them, one
        child is measured first (None)."""
        return self.ask if self.can_grant or self.need_known else None


def decide(scene: Scene) -> Admit | Wait:
    """Whether one more child starts now, and under which grant. Pure: the executor
    applies the answer (caps the first child, writes the decision, starts the task)."""
    if scene.exclusive:
        return Wait("a child that died within a guessed grant runs alone")
    if scene.most is not None and len(scene.running) >= scene.most:
        return Wait(f"{scene.most} running: as many as run at once")
    if scene.after_guess:  # it died within a guess: now it runs where nothing is guessed
        return Admit(None) if not scene.running else Wait("it runs alone now")
    if not scene.running:
        return Admit(None)  # alone is the best a child can get
    last = scene.most is not None and len(scene.running) + 1 >= scene.most
    decision = admit(scene.running, scene.usable_ask, scene.free, scene.total, scene.can_grant,
                     share=last and not scene.need_confirmed)
    return decision if decision is not None else Wait(
        "the budget's headroom does not hold one more child's need")
