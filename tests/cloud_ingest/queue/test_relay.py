"""Outbox → NATS JetStream: the announcement contract, the DB side of the relay on both back-ends,
message ids that name a segment (not an offset) so JetStream dedups across databases, no lock held
while publishing, a dead relay's claim re-published, and a real relay process killed with SIGKILL
mid-publish against the real NATS server."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from cloud_ingest.config import CloudConfig, RelayConfig
from cloud_ingest.queue.announce import Announcement, message_id, subject
from cloud_ingest.queue.consumer import SegmentConsumer
from cloud_ingest.queue.jetstream import JetStreamFeed
from cloud_ingest.queue.relay import Relay, ensure_stream
from cloud_ingest.storage.metadata.protocol import Effect, OutboxRow, SegmentRow, UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared.errors import MalformedMessage, UnknownVersion
from tests.cloud_ingest.conftest import open_config_db
from tests.cloud_ingest.queue.helpers import (
    NATS_URL,
    REPO,
    S,
    applied_counts,
    count_effect,
    fill_outbox,
    make_effects_table,
    needs_nats,
    relay_config,
    unpublished,
)


@pytest.fixture
async def js() -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(NATS_URL)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    yield d
    d.close()


def relay_round(db: SQLMetadataDB, limit: int, publish: Callable[[list[OutboxRow]], int], owner: str = "t") -> int:
    """One relay round as :meth:`Relay.run_once` does it, with ``publish`` instead of NATS: claim,
    publish, mark the acknowledged prefix and give the rest back."""
    rows = db.claim_outbox(owner, limit, time.time_ns(), 60 * S)
    done = publish(rows) if rows else 0
    db.mark_published(owner, [r.offset for r in rows[:done]], time.time_ns(), [r.offset for r in rows[done:]])
    return done


def test_announcement_round_trip_and_typed_errors() -> None:
    a = Announcement("s1", "car.1", 1, 2, ("raw/x",), ("a" * 64,), ("old",), ("hard_brake",), b"rec")
    assert Announcement.decode(a.encode()) == a
    with pytest.raises(MalformedMessage):
        Announcement.decode(b"\x81\xa1x\x01")
    from shared import wire

    with pytest.raises(UnknownVersion):
        Announcement.decode(wire.pack("avdata.SegmentAnnouncement", 9, {}))
    assert subject("segments.raw", "car.1") == "segments.raw.car~1" != subject("segments.raw", "car_1")


def test_a_relay_round_marks_only_the_acknowledged_prefix(db: SQLMetadataDB) -> None:
    ids = fill_outbox(db, 10)
    seen: list[str] = []

    def ack_three(rows: list[OutboxRow]) -> int:
        seen.extend(r.segment_id for r in rows)
        return 3

    assert relay_round(db, 4, ack_three) == 3
    assert seen == ids[:4] and unpublished(db) == 7
    seen.clear()
    def ack_none(rows: list[OutboxRow]) -> int:
        seen.extend(r.segment_id for r in rows)
        return 0

    assert relay_round(db, 100, ack_none) == 0
    assert seen == ids[3:] and unpublished(db) == 7  # nothing acknowledged: nothing marked
    assert relay_round(db, 100, len) == 7 and unpublished(db) == 0
    assert relay_round(db, 100, len) == 0


def test_relays_share_rows_while_one_is_publishing(db: SQLMetadataDB, cloud_config: CloudConfig) -> None:
    fill_outbox(db, 40)
    other = open_config_db(cloud_config)
    inside, release = threading.Event(), threading.Event()
    got: dict[str, list[int]] = {}

    def slow(rows: list[OutboxRow]) -> int:
        got["a"] = [r.offset for r in rows]
        inside.set()
        release.wait(10)
        return len(rows)

    t = threading.Thread(target=relay_round, args=(db, 10, slow, "a"))
    t.start()
    assert inside.wait(10)
    def fast(rows: list[OutboxRow]) -> int:
        got["b"] = [r.offset for r in rows]
        return len(rows)

    relay_round(other, 10, fast, "b")
    release.set()
    t.join()
    other.close()
    assert len(got["a"]) == len(got["b"]) == 10 and not set(got["a"]) & set(got["b"])
    assert unpublished(db) == 20


@needs_nats
async def test_in_process_relay_publishes_pointers_with_msg_ids(db: SQLMetadataDB, js: JetStreamContext) -> None:
    cfg = relay_config()
    ids = fill_outbox(db, 30)
    await ensure_stream(js, cfg)
    try:
        await ensure_stream(js, cfg)  # idempotent
        relay = Relay(db, js, cfg)
        while await relay.run_once():
            pass
        info = await js.stream_info(cfg.stream)
        assert info.state.messages == 30 and info.config.duplicate_window == 120.0
        assert info.config.max_age == 7 * 24 * 3600.0
        sub = await js.pull_subscribe(f"{cfg.subject_prefix}.car-3", stream=cfg.stream)
        msgs = await sub.fetch(3, timeout=5)
        ann = Announcement.decode(msgs[0].data)
        assert ann.vehicle_id == "car-3" and ann.segment_id == ids[3] and msgs[0].headers is not None
        assert msgs[0].headers["Nats-Msg-Id"] == message_id(ids[3], 1) and len(msgs[0].data) < 1024
    finally:
        await js.delete_stream(cfg.stream)


def _segments(db: SQLMetadataDB, ids: list[str], upload_id: str) -> None:
    """Segments ``ids`` of ``car-1`` with their announcements, committed in this order."""
    db.create_upload(UploadRecord(upload_id, "car-1", 1, 0, "f" * 64, "s", "f", "in_progress", 1, 10 * S))
    rows = [SegmentRow(sid, "car-1", i * S, i * S + S, "snap", "f" * 64, upload_id, "raw/k", b"r", 1)
            for i, sid in enumerate(ids)]
    db.commit_ingest(upload_id, rows, [OutboxRow(0, "segments.raw", "car-1", r.segment_id, Announcement(
        r.segment_id, "car-1", r.start_ns, r.end_ns, ("raw/k",), ("f" * 64,), (), (), None).encode(), 1)
        for r in rows], 1)


def _duplicates(relay: Relay) -> float:
    return relay.metrics.registry.get_sample_value("avdata_relay_duplicates_total") or 0.0


@needs_nats
async def test_message_ids_name_segments_so_jetstream_dedups_across_databases(
        db: SQLMetadataDB, js: JetStreamContext, tmp_path: Path) -> None:
    """The same segment from two databases is one message; different segments at the same offset
    of two databases are two (a per-database offset as the id would merge them)."""
    cfg = relay_config()
    other = open_config_db(CloudConfig(data_dir=tmp_path / "other"))
    _segments(db, ["seg-shared", "seg-a"], "u" * 32)
    _segments(other, ["seg-b", "seg-shared"], "w" * 32)
    assert [r.offset for r in db.read_outbox(0, 9)] == [r.offset for r in other.read_outbox(0, 9)]
    await ensure_stream(js, cfg)
    try:
        first, second = Relay(db, js, cfg), Relay(other, js, cfg)
        assert await first.run_once() == 2 and await second.run_once() == 2
        assert _duplicates(first) == 0 and _duplicates(second) == 1
        assert (await js.stream_info(cfg.stream)).state.messages == 3
        sub = await js.pull_subscribe(f"{cfg.subject_prefix}.car-1", stream=cfg.stream)
        got = [(m.headers or {}).get("Nats-Msg-Id") for m in await sub.fetch(3, timeout=5)]
        assert got == ["seg-shared:1", "seg-a:1", "seg-b:1"]
    finally:
        other.close()
        await js.delete_stream(cfg.stream)


def _lock_free(cloud_config: CloudConfig, offsets: list[int]) -> list[tuple[str, int]]:
    """From a connection of its own, lock the rows ``offsets`` without waiting (PostgreSQL: ``FOR
    UPDATE NOWAIT``; SQLite: ``BEGIN IMMEDIATE`` with no busy timeout); their claim columns."""
    marks = ", ".join("?" * len(offsets))
    if cloud_config.db.backend == "postgres":
        import psycopg

        with psycopg.connect(cloud_config.db.dsn) as conn:  # one transaction, rolled back on exit
            conn.execute(f'SET search_path TO "{cloud_config.db.schema}"')
            rows = conn.execute(f"SELECT claimed_by, lease_until_ns FROM outbox WHERE outbox_offset IN "
                                f"({marks.replace('?', '%s')}) FOR UPDATE NOWAIT", offsets).fetchall()
            conn.rollback()
    else:
        import sqlite3

        conn3 = sqlite3.connect(cloud_config.sqlite_path, timeout=0, isolation_level=None)
        try:
            conn3.execute("BEGIN IMMEDIATE")
            rows = conn3.execute(f"SELECT claimed_by, lease_until_ns FROM outbox WHERE outbox_offset IN ({marks})",
                                 offsets).fetchall()
            conn3.execute("ROLLBACK")
        finally:
            conn3.close()
    return [(str(r[0]), int(r[1])) for r in rows]


@needs_nats
async def test_relay_holds_no_lock_while_publishing(db: SQLMetadataDB, cloud_config: CloudConfig,
                                                    js: JetStreamContext) -> None:
    cfg = relay_config()
    fill_outbox(db, 40)
    seen: list[list[tuple[str, int]]] = []

    class Probe(Relay):
        async def publish_rows(self, rows: list[OutboxRow]) -> int:
            # raises (LockNotAvailable, "database is locked") if the claim's transaction were still open
            seen.append(await asyncio.to_thread(_lock_free, cloud_config, [r.offset for r in rows]))
            return await super().publish_rows(rows)

    await ensure_stream(js, cfg)
    try:
        relay = Probe(db, js, cfg)
        while await relay.run_once():
            pass
        now = time.time_ns()
        assert [len(s) for s in seen] == [16, 16, 8] and unpublished(db) == 0
        assert all(owner == relay.owner and now < until <= now + relay.lease_ns for s in seen for owner, until in s)
    finally:
        await js.delete_stream(cfg.stream)


@needs_nats
async def test_a_dead_relays_claim_is_republished_once_its_lease_ran_out(db: SQLMetadataDB,
                                                                         js: JetStreamContext) -> None:
    cfg = relay_config()
    fill_outbox(db, 20)
    await ensure_stream(js, cfg)
    try:
        dead = Relay(db, js, cfg, owner="dead")
        claimed = await asyncio.to_thread(db.claim_outbox, "dead", 10, time.time_ns(), S)  # a 1 s lease
        assert await dead.publish_rows(claimed[:5]) == 5  # it published half its claim, then died
        live = Relay(db, js, cfg)
        assert await live.run_once() == 10  # the rows nobody held
        assert await live.run_once() == 0  # the dead relay's lease is still live
        await asyncio.sleep(1.2)
        assert await live.run_once() == 10 and unpublished(db) == 0
        assert _duplicates(live) == 5  # the re-published five were dropped by msg id
        assert (await js.stream_info(cfg.stream)).state.messages == 20
    finally:
        await js.delete_stream(cfg.stream)


def _start_relay(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", "relay", "--config", str(config_path)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _toml(cloud_config: CloudConfig, cfg: RelayConfig) -> str:
    text = f'data_dir = "{cloud_config.data_dir}"\n[relay]\nnats_url = "{cfg.nats_url}"\nstream = "{cfg.stream}"\n' \
           f'subject_prefix = "{cfg.subject_prefix}"\nbatch = {cfg.batch}\npoll_interval_s = 0.05\n' \
           f'ack_timeout_s = {cfg.ack_timeout_s}\n'
    if cloud_config.db.backend == "postgres":
        text += f'[db]\nbackend = "postgres"\ndsn = "{cloud_config.db.dsn}"\nschema = "{cloud_config.db.schema}"\n'
    return text


async def _until(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


@needs_nats
async def test_relay_process_killed_mid_publish_delivers_every_segment_once(
        db: SQLMetadataDB, cloud_config: CloudConfig, js: JetStreamContext, tmp_path: Path) -> None:
    cfg = replace(relay_config(), ack_timeout_s=1.0)  # a 6 s lease: the dead relay's claim comes back soon
    n = 2500
    ids = fill_outbox(db, n)
    config_path = tmp_path / "relay.toml"
    config_path.write_text(_toml(cloud_config, cfg))
    proc = _start_relay(config_path)
    try:
        async def some_published() -> bool:
            try:
                return (await js.stream_info(cfg.stream)).state.messages > 0
            except nats.js.errors.NotFoundError:
                return False

        await _until(some_published, 30)
        await asyncio.sleep(random.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        in_stream = (await js.stream_info(cfg.stream)).state.messages
        marked = n - unpublished(db)
        assert 0 < in_stream < n, "the kill should land mid-publish"
        assert marked <= in_stream  # a row is marked only after its PubAck
        proc = _start_relay(config_path)

        async def drained() -> bool:
            return await asyncio.to_thread(unpublished, db) == 0

        await _until(drained, 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert (await js.stream_info(cfg.stream)).state.messages == n  # duplicate window dropped re-sends
        make_effects_table(db)

        async def handle(ann: Announcement) -> Effect:
            return count_effect(ann.segment_id)

        consumer = SegmentConsumer(JetStreamFeed(js, cfg, durable=f"c{uuid.uuid4().hex[:8]}"), db, "mining")
        deadline = time.monotonic() + 60
        while consumer.applied < n and time.monotonic() < deadline:
            await consumer.poll(handle, batch=500, timeout_s=1.0)
        assert applied_counts(db) == dict.fromkeys(ids, 1)
        # a second consumer group replaying the stream into the same inbox applies nothing
        again = SegmentConsumer(JetStreamFeed(js, cfg, durable=f"r{uuid.uuid4().hex[:8]}"), db, "mining")
        replayed = 0
        while again.duplicates < n and time.monotonic() < deadline:
            replayed += await again.poll(handle, batch=500, timeout_s=1.0)
        assert replayed == 0 and again.duplicates == n and applied_counts(db) == dict.fromkeys(ids, 1)
        await consumer.close()
        await again.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await js.delete_stream(cfg.stream)
