"""One suite for every MetadataDB back-end (SQLite file, real PostgreSQL in its own schema; the ``db``
fixture of this folder's conftest). The queue's tables are in ``test_queue_tables.py``."""

from __future__ import annotations

import threading

import pytest

from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import UploadLocked, UploadNotFound, VehicleExists
from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.outbox import OutboxFeed
from cloud_ingest.storage.metadata import schema as db_schema
from cloud_ingest.storage.metadata.protocol import (
    COMPLETE,
    IN_PROGRESS,
    MetadataDB,
    OutboxRow,
    QuarantineRow,
    SegmentRow,
    UploadRecord,
)
from tests.cloud_ingest.conftest import open_config_db

S = 1_000_000_000


def upload(uid: str = "a" * 32, vehicle: str = "car-1", sha: str = "f" * 64, length: int = 100) -> UploadRecord:
    return UploadRecord(uid, vehicle, length, 0, sha, "snap", "f.mcap", IN_PROGRESS, 1, 10 * S)


def seg(sid: str, start_s: int, vehicle: str = "car-1", sha: str = "f" * 64) -> SegmentRow:
    return SegmentRow(sid, vehicle, start_s * S, (start_s + 20) * S, "snap", sha, "a" * 32, "raw/k", b"rec", 5)


def test_migrations_are_versioned_and_idempotent(db: MetadataDB) -> None:
    assert db.migrate() == db_schema.LATEST
    assert db.migrate() == db_schema.LATEST


def test_vehicles(db: MetadataDB) -> None:
    from cloud_ingest.storage.metadata.protocol import VehicleRow

    db.add_vehicle(VehicleRow("car-1", b"s" * 16, b"h" * 32, 1, 1))
    with pytest.raises(VehicleExists):
        db.add_vehicle(VehicleRow("car-1", b"t" * 16, b"i" * 32, 2, 2))
    assert db.set_vehicle_token("car-1", b"u" * 16, b"j" * 32, 3)
    assert not db.set_vehicle_token("car-404", b"u" * 16, b"j" * 32, 3)
    got = db.get_vehicle("car-1")
    assert got is not None and got.token_hash == b"j" * 32 and got.rotated_ns == 3
    assert [v.vehicle_id for v in db.list_vehicles()] == ["car-1"]


def test_upload_lease_excludes_other_owners_until_released_or_expired(db: MetadataDB) -> None:
    db.create_upload(upload())
    db.claim_upload("a" * 32, "daemon-A", now_ns=1 * S, lease_ns=10 * S)
    with pytest.raises(UploadLocked):
        db.claim_upload("a" * 32, "daemon-B", now_ns=2 * S, lease_ns=10 * S)
    rec = db.advance_upload("a" * 32, "daemon-A", 40, 40, expires_ns=99 * S, release=True)
    assert rec.offset_bytes == 40 and rec.bytes_received == 40 and rec.lock_owner == ""
    db.claim_upload("a" * 32, "daemon-B", now_ns=3 * S, lease_ns=10 * S)
    with pytest.raises(UploadLocked):  # A lost the lease: it may not write
        db.advance_upload("a" * 32, "daemon-A", 80, 40, expires_ns=99 * S, release=True)
    db.claim_upload("a" * 32, "daemon-A", now_ns=14 * S, lease_ns=10 * S)  # B's lease ran out (B died)
    with pytest.raises(UploadNotFound):
        db.claim_upload("b" * 32, "daemon-A", now_ns=1, lease_ns=1)


def test_concurrent_claims_have_exactly_one_winner(db: MetadataDB, cloud_config: CloudConfig) -> None:
    db.create_upload(upload())
    others = [open_config_db(cloud_config) for _ in range(4)]
    wins: list[str] = []
    barrier = threading.Barrier(len(others))

    def claim(i: int, d: MetadataDB) -> None:
        barrier.wait()
        try:
            d.claim_upload("a" * 32, f"d{i}", now_ns=S, lease_ns=60 * S)
            wins.append(f"d{i}")
        except UploadLocked:
            pass

    threads = [threading.Thread(target=claim, args=(i, d)) for i, d in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in others:
        d.close()
    assert len(wins) == 1
    rec = db.get_upload("a" * 32)
    assert rec is not None and rec.lock_owner == wins[0]


def test_commit_ingest_is_idempotent_and_writes_the_outbox_once(db: MetadataDB) -> None:
    db.create_upload(upload())
    rows = [seg("s1", 0), seg("s2", 20)]
    box = [OutboxRow(0, "segments.raw", "car-1", r.segment_id, b"payload-" + r.segment_id.encode(), 0)
           for r in rows]
    assert db.commit_ingest("a" * 32, rows, box, 7) == ["s1", "s2"]
    assert db.commit_ingest("a" * 32, rows, box, 8) == []
    rec = db.get_upload("a" * 32)
    assert rec is not None and rec.status == COMPLETE and rec.segment_ids == ("s1", "s2")
    assert db.find_complete_upload("car-1", "f" * 64) == rec
    assert db.find_complete_upload("car-2", "f" * 64) is None
    out = db.read_outbox(0, 10)
    assert [(o.segment_id, o.key, o.payload) for o in out] == [("s1", "car-1", b"payload-s1"),
                                                               ("s2", "car-1", b"payload-s2")]
    assert out[0].offset < out[1].offset
    assert db.segment_ids_for_sha("car-1", "f" * 64) == ["s1", "s2"]


def test_list_segments_newest_first_with_filters(db: MetadataDB) -> None:
    db.create_upload(upload())
    db.commit_ingest("a" * 32, [seg("s1", 0), seg("s2", 20), seg("s3", 40, vehicle="car-2")], [], 1)
    assert [r.segment_id for r in db.list_segments(None, 10, None)] == ["s3", "s2", "s1"]
    assert [r.segment_id for r in db.list_segments("car-1", 10, None)] == ["s2", "s1"]
    assert [r.segment_id for r in db.list_segments(None, 1, None)] == ["s3"]
    assert [r.segment_id for r in db.list_segments(None, 10, 10 * S)] == ["s3", "s2"]
    got = db.get_segment("s2")
    assert got is not None and got.record == b"rec" and got.start_ns == 20 * S
    assert db.get_segment("nope") is None


def test_quarantine_and_expiry(db: MetadataDB) -> None:
    db.create_upload(upload("a" * 32))
    db.create_upload(upload("b" * 32))
    db.quarantine(QuarantineRow("a" * 32, "car-1", "mcap_invalid", "bad crc", "a.mcap", 5))
    q = db.get_quarantine("a" * 32)
    assert q is not None and q.reason == "mcap_invalid"
    rec = db.get_upload("a" * 32)
    assert rec is not None and rec.status == "quarantined"
    assert [r.upload_id for r in db.expired_uploads(11 * S)] == ["b" * 32]  # quarantined ones are kept
    assert db.expired_uploads(9 * S) == []
    db.delete_upload("b" * 32)
    assert db.get_upload("b" * 32) is None


async def test_outbox_feed_consumes_by_offset_and_remembers(db: MetadataDB) -> None:
    db.create_upload(upload())
    rows = [seg(f"s{i}", i * 20) for i in range(5)]
    db.commit_ingest("a" * 32, rows, [OutboxRow(0, "segments.raw", "car-1", r.segment_id, Announcement(
        r.segment_id, r.vehicle_id, r.start_ns, r.end_ns, (), (), (), (), None).encode(), 0) for r in rows], 1)
    feed = OutboxFeed(db, "mining")
    first = await feed.fetch(3, timeout_s=0.1)
    assert [d.announcement.segment_id for d in first] == ["s0", "s1", "s2"]
    await feed.ack(first[1:])  # out of order: nothing is committed past the unacknowledged s0
    assert OutboxFeed(db, "mining").committed == 0
    await feed.ack(first[:1])
    again = OutboxFeed(db, "mining")  # a restart resumes after the committed offset
    assert [d.announcement.segment_id for d in await again.fetch(10, timeout_s=0.1)] == ["s3", "s4"]
    other = await OutboxFeed(db, "labeling").fetch(10, timeout_s=0.1)
    assert [d.announcement.segment_id for d in other][:1] == ["s0"]
