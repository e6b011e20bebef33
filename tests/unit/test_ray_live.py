"""A running attempt's events reach the driver as they are written (live.py): the node's
Forwarder, the tracker's Received and the driver's Spool, end to end without Ray (the
real-cluster pruning test is tests/fixes/test_ray.py)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from harness.phase2.executors.ray import live
from harness.workload import events as ev


def _line(step: int) -> bytes:
    return (json.dumps({"event": "report", "step": step, "metrics": {"loss": 1.0 / step}})
            + "\n").encode()


class Driver:
    """The tracker and the spool, as the executor drives them each poll."""

    def __init__(self, out: Path) -> None:
        self.received, self.spool = live.Received(), live.Spool(self.take, out / "live")
        self.lock = threading.Lock()

    def send(self, offset: int, data: bytes, last: bool) -> None:
        with self.lock:
            self.received.append("0000-k", 1, offset, data)

    def take(self, running: live.Ids, ended: live.Ids) -> dict[tuple[str, int], bytes]:
        with self.lock:
            return self.received.take(running, ended)

    def poll(self, ended: bool = False) -> Path:
        ids = [("0000-k", 1)]
        self.spool.pull(ids, ids if ended else [])
        return self.spool.path("0000-k", 1)


def test_reports_arrive_while_the_child_writes_and_all_of_them_by_the_end(tmp_path):
    events, driver = tmp_path / "events.jsonl", Driver(tmp_path)
    seen: list[tuple[int, dict]] = []
    offset = 0
    try:
        with live.Forwarder(events, driver.send), events.open("ab") as child:
            for step in range(1, 6):
                child.write(_line(step))
                child.flush()
            child.write(b'{"event": "report", "st')  # mid-write: not sent yet
            child.flush()
            deadline = time.monotonic() + 30
            while len(seen) < 5 and time.monotonic() < deadline:  # before the child ends
                new, offset = ev.read_new(driver.poll(), offset)
                seen += [r for e in new if (r := ev.report_of(e))]
                time.sleep(0.05)
            assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
            child.write(b'ep": 6, "metrics": {"loss": 0.5}}\n')
        new, offset = ev.read_new(driver.poll(ended=True), offset)  # the last push: awaited
        assert [ev.report_of(e) for e in new] == [(6, {"loss": 0.5})]
        assert driver.spool.path("0000-k", 1).read_bytes() == events.read_bytes()
        driver.poll()  # the next poll: the ended attempt was read, its spool file goes
        assert not driver.spool.path("0000-k", 1).exists()
    finally:
        driver.spool.close()
    assert not driver.spool.dir.exists()


def test_the_tracker_takes_only_what_continues_and_no_more_than_the_limit():
    received = live.Received()
    received.append("k", 1, 0, b"a\n")
    received.append("k", 1, 5, b"gap\n")  # not where the last piece ended
    received.append("k", 1, 0, b"a\n")  # a repeat
    received.append("k", 1, 2, "text\n")  # type: ignore[arg-type]  # not bytes
    received.append("k", 1, 2, b"x" * live.LIVE_LIMIT)  # past the limit
    received.append("k", 1, 2, b"b\n")
    assert received.take([("k", 1), ("k", 2)], []) == {("k", 1): b"a\nb\n"}
    assert received.take([("k", 1)], []) == {}
    assert received.take([], [("k", 1)]) == {}  # ended: forgotten
    received.append("k", 1, 0, b"again\n")  # forgotten: starts over
    assert received.take([("k", 1)], []) == {("k", 1): b"again\n"}


def test_a_planted_link_is_never_followed_and_a_failing_send_ends_only_forwarding(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b'{"event": "report", "step": 1, "metrics": {}}\n')
    events = tmp_path / "events.jsonl"
    os.symlink(secret, events)
    sent: list[bytes] = []
    with live.Forwarder(events, lambda o, d, last: sent.append(d)):
        pass
    assert b"".join(sent) == b""

    events.unlink()
    events.write_bytes(_line(1))

    def broken(offset: int, data: bytes, last: bool) -> None:
        raise ConnectionError("the driver is gone")

    forwarder = live.Forwarder(events, broken)
    with forwarder:  # no exception leaves it: the attempt goes on
        pass
    assert forwarder.offset == len(_line(1))


def test_a_long_file_is_sent_in_pieces_that_keep_its_offsets(tmp_path):
    events = tmp_path / "events.jsonl"
    body = b"".join(_line(step) for step in range(1, 3000))
    assert len(body) > 2 * live.CHUNK
    events.write_bytes(body)
    driver = Driver(tmp_path)
    try:
        with live.Forwarder(events, driver.send):
            pass
        assert driver.poll().read_bytes() == body
    finally:
        driver.spool.close()


def test_the_spool_is_the_runs_own_and_starts_clean(tmp_path):
    """A killed driver's spool is removed by the next executor on that OUT; a link put
    where the spool goes is removed, never followed; the spool goes with the executor."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("not the run's")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "live")
    spool = live.Spool(lambda running, ended: {}, out / "live")
    assert not (out / "live").is_symlink() and (elsewhere / "keep").exists()
    assert (out / "live").stat().st_mode & 0o777 == 0o700
    (out / "live" / "0000-k.1.jsonl").write_bytes(_line(1))  # as a killed driver left it
    again = live.Spool(lambda running, ended: {}, out / "live")
    assert list(again.dir.iterdir()) == []
    spool.close()
    again.close()
    assert not (out / "live").exists()
