"""Outbox → NATS JetStream: the announcement contract, the DB side of the relay on both back-ends,
and a real relay process killed with SIGKILL mid-publish against the real NATS server."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from cloud_ingest.config import CloudConfig, RelayConfig
from cloud_ingest.queue.announce import Announcement, subject
from cloud_ingest.queue.consumer import ProcessedIds, SegmentConsumer
from cloud_ingest.queue.jetstream import JetStreamFeed
from cloud_ingest.queue.relay import Relay, ensure_stream
from cloud_ingest.storage.metadata.protocol import OutboxRow, SegmentRow, UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared.errors import MalformedMessage, UnknownVersion
from tests.cloud_ingest.conftest import open_config_db

REPO = Path(__file__).parents[3]
NATS_URL = os.environ.get("AVDATA_TEST_NATS_URL", "nats://127.0.0.1:4222")
S = 1_000_000_000


def nats_unreachable() -> str | None:
    host, port = NATS_URL.removeprefix("nats://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return None
    except OSError as exc:
        return f"NATS at {NATS_URL} unreachable: {exc}"


needs_nats = pytest.mark.skipif(nats_unreachable() is not None, reason=str(nats_unreachable()))


def relay_config() -> RelayConfig:
    """A stream and subject prefix of this test alone."""
    tag = uuid.uuid4().hex[:10]
    return RelayConfig(nats_url=NATS_URL, stream=f"T_{tag}", subject_prefix=f"t{tag}.raw", batch=16,
                       poll_interval_s=0.05)


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


def fill_outbox(db: SQLMetadataDB, n: int) -> list[str]:
    """``n`` segments of ten vehicles, each with its announcement in the outbox; their ids."""
    db.create_upload(UploadRecord("u" * 32, "car-0", 1, 0, "f" * 64, "s", "f", "in_progress", 1, 10 * S))
    ids = [str(uuid.uuid4()) for _ in range(n)]
    rows = [SegmentRow(sid, f"car-{i % 10}", i * S, i * S + S, "snap", "f" * 64, "u" * 32, "raw/k", b"r", 1)
            for i, sid in enumerate(ids)]
    box = [OutboxRow(0, "segments.raw", r.vehicle_id, r.segment_id, Announcement(
        r.segment_id, r.vehicle_id, r.start_ns, r.end_ns, ("raw/k",), ("f" * 64,), (), (), None).encode(), 1)
        for r in rows]
    db.commit_ingest("u" * 32, rows, box, 1)
    return ids


def unpublished(db: SQLMetadataDB) -> int:
    with db.transaction() as tx:
        return int(tx.run("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL")[0][0])


def test_announcement_round_trip_and_typed_errors() -> None:
    a = Announcement("s1", "car.1", 1, 2, ("raw/x",), ("a" * 64,), ("old",), ("hard_brake",), b"rec")
    assert Announcement.decode(a.encode()) == a
    with pytest.raises(MalformedMessage):
        Announcement.decode(b"\x81\xa1x\x01")
    from shared import wire

    with pytest.raises(UnknownVersion):
        Announcement.decode(wire.pack("avdata.SegmentAnnouncement", 9, {}))
    assert subject("segments.raw", "car.1") == "segments.raw.car~1" != subject("segments.raw", "car_1")


def test_publish_outbox_marks_only_the_acknowledged_prefix(db: SQLMetadataDB) -> None:
    ids = fill_outbox(db, 10)
    seen: list[str] = []

    def ack_three(rows: list[OutboxRow]) -> int:
        seen.extend(r.segment_id for r in rows)
        return 3

    assert db.publish_outbox(4, ack_three) == 3
    assert seen == ids[:4] and unpublished(db) == 7
    seen.clear()
    def ack_none(rows: list[OutboxRow]) -> int:
        seen.extend(r.segment_id for r in rows)
        return 0

    assert db.publish_outbox(100, ack_none) == 0
    assert seen == ids[3:] and unpublished(db) == 7  # nothing acknowledged: nothing marked
    assert db.publish_outbox(100, len) == 7 and unpublished(db) == 0
    assert db.publish_outbox(100, len) == 0


# SKIP LOCKED sharing is the PostgreSQL relay's; SQLite runs one relay per file, so only that back-end.
@pytest.mark.parametrize("db_config", ["postgres"], indirect=True)
def test_postgres_relays_share_rows_with_skip_locked(db: SQLMetadataDB, cloud_config: CloudConfig) -> None:
    assert cloud_config.db.backend == "postgres"
    fill_outbox(db, 40)
    other = open_config_db(cloud_config)
    inside, release = threading.Event(), threading.Event()
    got: dict[str, list[int]] = {}

    def slow(rows: list[OutboxRow]) -> int:
        got["a"] = [r.offset for r in rows]
        inside.set()
        release.wait(10)
        return len(rows)

    t = threading.Thread(target=db.publish_outbox, args=(10, slow))
    t.start()
    assert inside.wait(10)
    def fast(rows: list[OutboxRow]) -> int:
        got["b"] = [r.offset for r in rows]
        return len(rows)

    other.publish_outbox(10, fast)
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
        assert msgs[0].headers["Nats-Msg-Id"].startswith("outbox-") and len(msgs[0].data) < 1024
    finally:
        await js.delete_stream(cfg.stream)


def _start_relay(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", "relay", "--config", str(config_path)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _toml(cloud_config: CloudConfig, cfg: RelayConfig) -> str:
    text = f'data_dir = "{cloud_config.data_dir}"\n[relay]\nnats_url = "{cfg.nats_url}"\nstream = "{cfg.stream}"\n' \
           f'subject_prefix = "{cfg.subject_prefix}"\nbatch = {cfg.batch}\npoll_interval_s = 0.05\n'
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
    cfg = relay_config()
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
        handled: list[str] = []

        async def handle(_mid: str, ann: Announcement) -> None:
            handled.append(ann.segment_id)

        consumer = SegmentConsumer(JetStreamFeed(js, cfg, durable=f"c{uuid.uuid4().hex[:8]}"),
                                   processed=ProcessedIds(tmp_path / "processed.ids"))
        deadline = time.monotonic() + 30
        while len(handled) < n and time.monotonic() < deadline:
            await consumer.poll(handle, batch=500, timeout_s=1.0)
        assert sorted(handled) == sorted(ids) and len(set(handled)) == n
        # a second consumer group replaying the stream with the same processed ids handles nothing
        again = SegmentConsumer(JetStreamFeed(js, cfg, durable=f"r{uuid.uuid4().hex[:8]}"),
                                processed=ProcessedIds(tmp_path / "processed.ids"))
        replayed = 0
        while again.duplicates < n and time.monotonic() < deadline:
            replayed += await again.poll(handle, batch=500, timeout_s=1.0)
        assert replayed == 0 and again.duplicates == n and len(handled) == n
        await consumer.close()
        await again.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await js.delete_stream(cfg.stream)
