"""The persistent queue: ordering, persistence across reopen, states, and the disk budget."""

from __future__ import annotations

import time
from pathlib import Path

from tests.vehicle.upload.test_uploader import make_snapshot
from vehicle.upload.queue import EVICTED, UploadQueue

NS = 1_000_000_000


def test_order_is_priority_then_age_and_survives_reopen(tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    q = UploadQueue(tmp_path / "q.sqlite3", snaps, 10**9)
    made = [make_snapshot(snaps, 1000, t0=(1_700_000_000 + i) * NS, priority=p)
            for i, p in enumerate([10, 80, 10, 80])]
    for s in made:
        q.enqueue(s)
    q.enqueue(made[0])  # idempotent
    order = [e.snapshot_id for e in q.entries()]
    ids = [s.manifest.snapshot_id for s in made]
    assert order == [ids[1], ids[3], ids[0], ids[2]]
    q.start(ids[1], "http://cloud/files/abc")
    q.set_offset(ids[1], 4096)
    q.close()
    q = UploadQueue(tmp_path / "q.sqlite3", snaps, 10**9)
    e = q.next_ready(time.time_ns())
    assert e is not None and (e.snapshot_id, e.state, e.upload_url, e.offset_bytes) == (
        ids[1], "uploading", "http://cloud/files/abc", 4096)
    q.defer(ids[1], time.time_ns() + 60 * NS, "503")
    nxt = q.next_ready(time.time_ns())
    assert nxt is not None and nxt.snapshot_id == ids[3], "a deferred entry lets the next one go"
    q.done(ids[3], "s1")
    q.fail(ids[0], "422 bad")
    assert q.depth() == {"pending": 1, "uploading": 1, "done": 1, "failed": 1}
    assert not made[3].path.exists() and made[0].path.exists()
    q.close()


def test_disk_budget_evicts_failed_then_lowest_priority_oldest(tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    a = make_snapshot(snaps, 20_000, t0=1_700_000_001 * NS, priority=10)
    b = make_snapshot(snaps, 20_000, t0=1_700_000_002 * NS, priority=10)
    c = make_snapshot(snaps, 20_000, t0=1_700_000_003 * NS, priority=90)
    d = make_snapshot(snaps, 20_000, t0=1_700_000_004 * NS, priority=50)
    size = a.manifest.size_bytes
    q = UploadQueue(tmp_path / "q.sqlite3", snaps, int(size * 3.5))
    for s in (a, b, c):
        assert q.enqueue(s) == []
    q.fail(c.manifest.snapshot_id, "422 bad")
    evicted = q.enqueue(d)
    assert [e.snapshot_id for e in evicted] == [c.manifest.snapshot_id], "failed files go first"
    e = make_snapshot(snaps, 20_000, t0=1_700_000_005 * NS, priority=50)
    evicted = q.enqueue(e)
    assert [x.snapshot_id for x in evicted] == [a.manifest.snapshot_id], "then lowest priority, oldest"
    assert not a.path.exists() and b.path.exists()
    assert q.queued_bytes() <= q.max_bytes
    got = q.get(a.manifest.snapshot_id)
    assert got is not None and (got.state, got.reason) == ("failed", EVICTED)
    q.close()
