"""Limits: parse them, pick how a task budget is enforced, and apply them in a trampoline.

The trampoline (`python -I -m harness.host.limits [options] -- CMD...`) joins the launch
group's pids cgroup, sets rlimits, optionally drops to another uid, then execs
CMD. Applying limits this way instead of with `preexec_fn` is safe in threaded
parents and works for every method, `os.system` included. It runs as root in the
child's directory, so in isolated mode (-I: no current directory, PYTHONPATH or user
site on sys.path): a `harness/` planted there is never imported. Dropping to another
user, it enters the child's directory only after the uid change and hands the child
neither root's secrets nor root's HOME. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.envpolicy import is_secret
from harness.errors import HostError, InputError
from harness.host import cgroup
from harness.host.pdeathsig import die_with_parent
from harness.host.rlimit import RLIMITS

TRAMPOLINE_TAG = "harness-trampoline"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}




def parse_size(text: str) -> int:
    """'512M', '2G', '1.5GiB', '4096' -> bytes (binary units). ValueError names the text."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise InputError(f"bad size {text!r}: expected a number with an optional K/M/G/T suffix")
    number, unit = float(match.group(1)), match.group(2).lower()
    value = int(number * _UNITS[unit])
    if value <= 0:
        raise InputError(f"bad size {text!r}: must be greater than zero")
    return value


def parse_count(text: str, name: str = "count") -> int:
    """A strictly positive integer; ValueError names the text."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InputError(f"bad {name} {text!r}: expected a positive integer") from None
    if value <= 0:
        raise InputError(f"bad {name} {text!r}: must be greater than zero")
    return value


def pid_max() -> int:
    """The kernel's pid_max: no task budget can usefully exceed it."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return PID_MAX_LIMIT


PID_MAX_LIMIT = 1 << 22  # the kernel's own ceiling for pid_max (and pids.max)


def parse_tasks(text: str, name: str = "task budget") -> int:
    """A task budget: a positive integer the kernel can enforce (at most pid_max)."""
    value = parse_count(text, name)
    top = pid_max()
    if value > top:
        raise InputError(f"bad {name} {text!r}: more than this kernel's pid_max ({top}); "
                         "a budget that large limits nothing")
    return value


@dataclass(frozen=True)
class Limits:
    """The limits of a condition. tasks is the budget shared by all siblings."""

    tasks: int | None = None
    address_space: int | None = None
    stack: int | None = None
    nofile: int | None = None

    def rlimits(self) -> dict[str, int]:
        """rlimits every child gets as-is (the task budget is resolved separately)."""
        pairs = {"as": self.address_space, "stack": self.stack, "nofile": self.nofile}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass
class Budget:
    """How the task budget of one launch group is enforced, and the cgroup tracking it."""

    backend: str  # "pids-cgroup-v1" | "pids-cgroup-v2" | "rlimit-nproc" | "none"
    limit: int | None
    group: cgroup.PidsCgroup | None = None
    nproc_base: int | None = None  # uid tasks already running when the budget was set
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict:
        data = asdict(self)
        data["group"] = str(self.group.path) if self.group else None
        return data


def uid_tasks(uid: int) -> int:
    """Threads of every process whose real uid is uid: what RLIMIT_NPROC counts."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total


def open_budget(tasks: int | None, child_uid: int, backend: str = "auto") -> Budget:
    """Choose and set up the enforcement of a task budget for children running as child_uid.

    A pids cgroup is made whenever one can be, even without a budget: it tracks
    every process of the group so nothing escapes the final kill.
    """
    if backend not in ("auto", "cgroup", "nproc"):
        raise InputError(f"unknown budget backend {backend!r}: use auto, cgroup or nproc")
    use_nproc = tasks is not None and (backend == "nproc" or (backend == "auto" and child_uid))
    if use_nproc and child_uid == 0:
        raise HostError(
            "RLIMIT_NPROC (ulimit -u) is not enforced for uid 0: "
            "use the cgroup backend, or --run-as a non-root user"
        )
    try:
        group = cgroup.create(None if use_nproc else tasks)
    except HostError as exc:
        if tasks is None or use_nproc:
            return Budget("rlimit-nproc" if use_nproc else "none", tasks,
                          notes=[f"no tracking cgroup: {exc}"])
        if child_uid == 0:
            raise HostError(
                f"a task budget for root needs a pids cgroup, and none can be made: {exc}. "
                "Run where /sys/fs/cgroup/pids is writable or in a delegated cgroup v2 subtree"
            ) from exc
        return Budget("rlimit-nproc", tasks, notes=[f"no pids cgroup: {exc}"])
    if use_nproc:
        return Budget("rlimit-nproc", tasks, group=group)
    if tasks is None:
        return Budget("none", None, group=group)
    return Budget(f"pids-cgroup-v{group.version}", tasks, group=group)


def trampoline_argv(
    *,
    group: str | None = None,
    rlimits: dict[str, int] | None = None,
    user: tuple[int, int] | None = None,
    pdeathsig_parent: int | None = None,
    chdir: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The prefix that makes any command run under these limits.

    pdeathsig_parent: kill the command when this pid (its direct parent) dies;
    0 sets the death signal without checking who the parent is.
    """
    argv = [python, "-I", "-m", "harness.host.limits"]
    if group:
        argv += ["--cgroup", group]
    for name, value in (rlimits or {}).items():
        argv += ["--rlimit", f"{name}={value}"]
    if user:
        argv += ["--user", f"{user[0]}:{user[1]}"]
    if pdeathsig_parent is not None:
        argv += ["--pdeathsig", str(pdeathsig_parent)]
    if chdir:
        argv += ["--chdir", chdir]
    return [*argv, "--"]


def apply(group: str | None = None, rlimits: dict[str, int] | None = None,
          user: tuple[int, int] | None = None, pdeathsig_parent: int | None = None) -> None:
    """Put the calling process under the limits (trampoline, or an mp-fork child)."""
    if group:
        cgroup.PidsCgroup(Path(group), 0).join()
    for name, value in (rlimits or {}).items():
        resource.setrlimit(RLIMITS[name], (int(value), int(value)))
    if user:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
        become(user[0])
    # After the uid change: the kernel clears the death signal when credentials change.
    if pdeathsig_parent is not None and not die_with_parent(pdeathsig_parent):
        raise SystemExit(f"{TRAMPOLINE_TAG}: parent {pdeathsig_parent} is gone; not starting")


def become(uid: int) -> None:
    """The environment of the user the child now runs as: none of root's secrets (a
    variable whose name looks secret), and that user's HOME, USER and LOGNAME."""
    for name in [n for n in os.environ if is_secret(n)]:
        del os.environ[name]
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        entry = None
    os.environ.update({"HOME": entry.pw_dir if entry else "/", "USER": entry.pw_name if entry
                       else str(uid), "LOGNAME": entry.pw_name if entry else str(uid)})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print(f"{TRAMPOLINE_TAG}: usage: python -m harness.host.limits [options] -- CMD ...",
              file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="harness.host.limits")
    parser.add_argument("--cgroup")
    parser.add_argument("--rlimit", action="append", default=[])
    parser.add_argument("--user")
    parser.add_argument("--pdeathsig", type=int)
    parser.add_argument("--chdir")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command:
        print(f"{TRAMPOLINE_TAG}: no command after --", file=sys.stderr)
        return 2
    rlimits = {}
    for item in args.rlimit:
        name, _, value = item.partition("=")
        rlimits[name] = int(value)
    user: tuple[int, int] | None = None
    if args.user:  # "uid:gid", as trampoline_argv writes it
        uid, gid = (int(x) for x in args.user.split(":"))
        user = (uid, gid)
    try:
        apply(args.cgroup, rlimits, user, args.pdeathsig)
        if args.chdir:  # after the uid change: entered with the child's own permissions
            os.chdir(args.chdir)
    except OSError as exc:
        print(f"{TRAMPOLINE_TAG}: cannot apply limits: {exc}", file=sys.stderr)
        return 126
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"{TRAMPOLINE_TAG}: cannot exec {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # unreachable


if __name__ == "__main__":
    raise SystemExit(main())


FILES_BASE = 40  # the harness's own: interpreter, NVML, cgroup files, the ledger, logs
FILES_PER_LAUNCH = 8  # while one launch runs: its pidfd, the parent's pipes, samples, and
# the pipes Popen opens while it starts a process


def check_open_files(launches: int) -> None:
    """Refuse, before anything starts, to supervise more launches at once than this
    process may open files for (ulimit -n): one line instead of EMFILE halfway through
    starting them. The limit is not raised: the children would inherit it."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FILES_BASE + FILES_PER_LAUNCH * launches
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise HostError(f"RLIMIT_NOFILE (ulimit -n) {soft} is too low to supervise "
                        f"{launches} launches at once (about {FILES_PER_LAUNCH} open files "
                        f"each): raise it to {needed} or more, or run fewer at once")
