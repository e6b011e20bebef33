from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.errors import HostError
from harness.host import cgroup


def test_create_join_count_remove():
    group = cgroup.create(5)
    try:
        assert group.max == 5 and group.current == 0 and group.events_max == 0
        code = ("import os, threading, sys\n"
                f"open('{group.path}/cgroup.procs', 'w').write(str(os.getpid()))\n"
                "ok = 0\n"
                "for _ in range(20):\n"
                "    try:\n"
                "        threading.Thread(target=lambda: __import__('time').sleep(1)).start()\n"
                "        ok += 1\n"
                "    except RuntimeError:\n"
                "        pass\n"
                "print(ok)\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        assert int(done.stdout) == 4  # 5 tasks: the main thread and 4 more
        assert group.events_max > 0
        snap = group.snapshot()
        assert snap["max"] == 5 and snap["events_max"] == group.events_max
    finally:
        group.remove()
    assert not group.path.exists()


def test_kill_all_empties_the_group():
    group = cgroup.create(None)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "harness.host.limits", "--cgroup",
                                   str(group.path), "--", "sleep", "60"]) for _ in range(2)]
        while len(group.procs()) < 2:
            pass
        killed = group.kill_all()
        assert sorted(killed) == sorted(p.pid for p in procs)
        for p in procs:
            assert p.wait() == -9
    finally:
        group.remove()


def test_cgroup_of_self():
    group = cgroup.cgroup_of()
    assert group is not None and group.version in (1, 2)


def _fake_v2(tmp_path, subtree: str, controllers: str):
    own = tmp_path / "user.slice"
    own.mkdir()
    (own / "cgroup.subtree_control").write_text(subtree)
    (own / "cgroup.controllers").write_text(controllers)
    mountinfo = f"35 24 0:30 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw\n"
    return own, mountinfo


def test_v2_parent_with_pids_delegated(tmp_path):
    own, mountinfo = _fake_v2(tmp_path, "cpu pids", "cpu pids memory")
    assert cgroup.v2_parent(mountinfo, "/user.slice") == own


def test_v2_parent_enables_pids_when_available(tmp_path):
    own, mountinfo = _fake_v2(tmp_path, "cpu", "cpu pids")
    assert cgroup.v2_parent(mountinfo, "/user.slice") == own
    assert (own / "cgroup.subtree_control").read_text() == "+pids"


def test_v2_parent_explains_missing_controller(tmp_path):
    _, mountinfo = _fake_v2(tmp_path, "cpu", "cpu memory")
    with pytest.raises(HostError, match="pids controller is not delegated"):
        cgroup.v2_parent(mountinfo, "/user.slice")


def test_v2_parent_without_cgroup2():
    with pytest.raises(HostError, match="no cgroup2"):
        cgroup.v2_parent("22 1 0:21 / /proc rw - proc proc rw\n", "/")


def test_reap_stale_removes_groups_whose_creator_died():
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = cgroup.owner_pid()
    path = cgroup.V1_ROOT / f"{cgroup.NAME_PREFIX}{owner}-{dead.pid}-deadbeef"
    live = cgroup.V1_ROOT / f"{cgroup.NAME_PREFIX}{owner}-{os.getppid()}-cafebabe"
    path.mkdir()
    live.mkdir()
    try:
        assert {path, live} <= set(cgroup.leftovers(owner=owner))
        removed = cgroup.reap_stale(owner=owner)  # never another run's, beside the suite
        assert path in removed and live not in removed
        assert not path.exists() and live.exists()
    finally:
        live.rmdir()


def test_owner_pid_follows_the_environment(monkeypatch):
    monkeypatch.setenv(cgroup.OWNER_ENV, "4242")
    assert cgroup.owner_pid() == 4242
    monkeypatch.delenv(cgroup.OWNER_ENV)
    assert cgroup.owner_pid() == os.getpid()
