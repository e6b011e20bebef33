"""One evaluation on whatever node runs it, the local runner's way, with its files packed
for a driver elsewhere.

This is the body of a Ray task (see ray_executor), kept free of Ray so it runs and is
tested anywhere: a launch group of its own (pids cgroup sized to the granted task
budget), the phase2 method (fresh exec, allow-listed env, thread caps, files, new
session, pdeathsig), supervision with stall diagnosis and tree kill, the verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import untrusted
from harness.errors import HostError
from harness.host.limits import Limits
from harness.launch.command import Command
from harness.launch.condition import Condition
from harness.launch.group import Launch, LaunchGroup
from harness.phase2.executors.ray.live import Forwarder, Send
from harness.phase2.schedule.task import attempt_path
from harness.supervise.files import LaunchFiles
from harness.supervise.logcap import LOG_CAP_BYTES
from harness.verdict.outcome import Outcome

FILE_LIMIT = 1 << 20  # bytes of one log file sent back whole; larger ones send their tail
METHOD = "phase2"


@dataclass(frozen=True)
class Assignment:
    """Everything a node needs to run one attempt of one evaluation."""

    key: str
    attempt: int
    command: Command
    caps: dict[str, str]
    grant: int | None  # tasks this child may use: the `threads` its node granted
    timeout_s: float
    stall_timeout_s: float
    parent_tf: str = "none"
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    log_cap_bytes: int = LOG_CAP_BYTES


@dataclass
class Returned:
    """What comes back: the outcome, the files (or tails) and where they were made."""

    outcome: dict
    files: dict[str, bytes]
    node: str
    node_dir: str
    kept_on_node: bool  # some file was too big to send whole: the node copy is kept
    started_at: float


def _group(assignment: Assignment) -> tuple[LaunchGroup, list[str]]:
    """A launch group whose budget is the grant; unenforced, and said so, where this node
    cannot make a pids cgroup (or RLIMIT_NPROC) for it."""
    condition = Condition(name="phase2-ray", limits=Limits(tasks=assignment.grant),
                          parent_tf=assignment.parent_tf, env=assignment.env,
                          unset=assignment.unset)
    try:
        return LaunchGroup(condition, assignment.timeout_s, assignment.stall_timeout_s,
                           log_cap_bytes=assignment.log_cap_bytes), []
    except HostError as exc:
        if assignment.grant is None:
            raise
        fallback = Condition(name=condition.name, parent_tf=condition.parent_tf,
                             env=condition.env, unset=condition.unset)
        note = f"grant of {assignment.grant} tasks not enforced on this node: {exc}"
        return LaunchGroup(fallback, assignment.timeout_s, assignment.stall_timeout_s,
                           log_cap_bytes=assignment.log_cap_bytes), [note]


def run_here(assignment: Assignment, workdir: Path, forward: Send | None = None
             ) -> Returned:
    """Launch, supervise and classify one attempt under workdir/attempt-N (workdir is this
    evaluation's alone); pack its files, and remove them once all fit in the reply.
    forward: where its events go as they are written (live.py), the last of them before
    the files are packed."""
    files = LaunchFiles(attempt_path(workdir, assignment.attempt))
    group, notes = _group(assignment)
    launch = Launch(assignment.command, METHOD, files, assignment.caps, notes=tuple(notes))
    following = Forwarder(files.events, forward) if forward else contextlib.nullcontext()
    with group, following:
        started_at = time.time()
        [outcome] = group.run([launch])  # a cancel (KeyboardInterrupt) stops it: files kept
    packed, truncated = pack(files.dir)
    if not truncated:
        shutil.rmtree(files.dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # when no earlier attempt kept its files
            workdir.rmdir()
    return Returned(outcome.record(), packed, socket.gethostname(), str(files.dir),
                    truncated, started_at)


def pack(directory: Path, limit: int = FILE_LIMIT) -> tuple[dict[str, bytes], bool]:
    """name -> bytes for every file; a file over limit sends its last `limit` bytes after a
    line saying what was dropped and where the whole file stays."""
    packed, truncated = {}, False
    for path in sorted(directory.iterdir()):
        with untrusted.opened(path) as f:  # regular files only: never a planted link
            if f is None:
                continue
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - limit))
            data = f.read(limit)
        if size > limit:
            truncated = True
            data = (f"[harness: {size - limit} earlier bytes not sent; the whole file is "
                    f"{path} on {socket.gethostname()}]\n").encode() + data
        packed[path.name] = data
    return packed, truncated


def receive(returned: Returned, dest: LaunchFiles) -> Outcome:
    """Write the files under the driver's attempt dir, and the driver's outcome.json once:
    the node's outcome, pointed at them, saying where whole files stayed."""
    dest.dir.mkdir(parents=True, exist_ok=True)
    for name, data in returned.files.items():
        if name == dest.outcome.name or name != Path(name).name or name in ("", ".", ".."):
            continue  # the driver's own outcome is written below, once; no other paths
        if name.endswith(".json"):  # parent.json, parent-spec.json: paths inside
            data = data.replace(returned.node_dir.encode(), str(dest.dir).encode())
        with contextlib.suppress(FileExistsError), \
                os.fdopen(untrusted.create_exclusive(dest.dir / name), "wb") as f:
            f.write(data)
    text = json.dumps(returned.outcome)  # log_dir, stack_dump, evidence name node paths
    record = json.loads(text.replace(json.dumps(returned.node_dir)[1:-1],
                                     json.dumps(str(dest.dir))[1:-1]))
    if returned.kept_on_node:
        record["evidence"] = [*record.get("evidence", []),
                              f"logs over {FILE_LIMIT} bytes: tails here, whole files in "
                              f"{returned.node_dir} on {returned.node}"]
    outcome = Outcome.from_record(record)
    outcome.save(dest)
    return outcome

