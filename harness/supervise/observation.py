"""Observation: what supervision saw of one launch; classify() turns it into a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.supervise.files import LaunchFiles


@dataclass
class Observation:
    """What supervision saw of one launch; classify() turns it into a verdict."""

    index: int
    files: LaunchFiles
    parent_returncode: int | None = None
    started: float = 0.0  # wall clock at "go"
    duration_s: float = 0.0
    peak_threads: int = 0
    peak_rss: int = 0
    peak_vms: int = 0  # the largest VmSize of one process of the launch
    cpu_s: float = 0.0  # user + system seconds of every process of the launch
    stalled: bool = False
    timed_out: bool = False
    interrupted: str | None = None
    stall_evidence: list[str] = field(default_factory=list)
    stall_s: float = 0.0  # wall seconds between the last progress and the stop
    stall_cpu_s: float = 0.0  # CPU seconds the tree burned in them
    proof: list[str] = field(default_factory=list)  # a deadlock proven from /proc
    proof_kind: str | None = None  # "pipe" or "futex" (deadlock.Proof.kind)
    notes: list[str] = field(default_factory=list)  # what supervision did besides watching
    stack_dump: str | None = None
    stragglers: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    parent_killed: bool = False
    gpu_work: dict = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)  # wall clock: last_progress, stopped, exited,
    # reaped
