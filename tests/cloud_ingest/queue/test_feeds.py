"""One test suite for every queue back-end (:data:`cloud_ingest.queue.registry.BACKENDS`).

The outbox feed reads the metadata DB directly; the nats feed reads what a real relay published
to the real JetStream server. Both must deliver every announcement, re-deliver what was not
acknowledged after a restart, and skip (and count) a message that is not an announcement. Both
name each delivery ``<segment_id>:<version>``, so one consumer inbox serves either.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import nats
import pytest

from cloud_ingest.config import CloudConfig
from cloud_ingest.queue.announce import Announcement, message_id
from cloud_ingest.queue.consumer import SegmentConsumer
from cloud_ingest.queue.jetstream import JetStreamFeed
from cloud_ingest.queue.outbox import OutboxFeed
from cloud_ingest.queue.protocol import SegmentFeed
from cloud_ingest.queue.registry import BACKENDS, open_feed
from cloud_ingest.queue.relay import Relay, connect, ensure_stream
from cloud_ingest.storage.metadata.protocol import Effect, OutboxRow, SegmentRow, UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from tests.cloud_ingest.conftest import open_config_db
from tests.cloud_ingest.queue.helpers import (
    applied_counts,
    count_effect,
    fill_outbox,
    make_effects_table,
    nats_unreachable,
    relay_config,
)
from tests.helpers import require

S = 1_000_000_000


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "nats":
        require(nats_unreachable())
    return str(request.param)


@pytest.fixture
def cfg(cloud_config: CloudConfig) -> CloudConfig:
    return replace(cloud_config, relay=relay_config())


@pytest.fixture
def db(cfg: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cfg)
    yield d
    d.close()


async def _publish(backend: str, cfg: CloudConfig, db: SQLMetadataDB) -> None:
    """Move the outbox to the back-end (the outbox back-end reads it where it is)."""
    if backend != "nats":
        return
    nc = await connect(cfg.relay)
    js = nc.jetstream()
    await ensure_stream(js, cfg.relay)
    relay = Relay(db, js, cfg.relay)
    while await relay.run_once():
        pass
    await nc.close()


@pytest.fixture
async def cleanup(cfg: CloudConfig) -> AsyncIterator[None]:
    yield
    if nats_unreachable() is None:
        nc = await connect(cfg.relay)
        with contextlib.suppress(nats.js.errors.NotFoundError):  # an outbox run never creates it
            await nc.jetstream().delete_stream(cfg.relay.stream)
        await nc.close()


async def _drain(feed: SegmentFeed, want: int, ack: bool, msg_ids: list[str] | None = None) -> list[str]:
    got: list[str] = []
    for _ in range(50):
        batch = await feed.fetch(64, timeout_s=0.5)
        got += [d.announcement.segment_id for d in batch]
        if msg_ids is not None:
            msg_ids += [d.msg_id for d in batch]
        if ack:
            await feed.ack(batch)
        if len(got) >= want:
            break
    return got


async def test_every_announcement_delivered_once_acked(backend: str, cfg: CloudConfig, db: SQLMetadataDB,
                                                       cleanup: None) -> None:
    ids = fill_outbox(db, 40)
    await _publish(backend, cfg, db)
    feed = await open_feed(backend, cfg, db, f"c{uuid.uuid4().hex[:8]}")
    msg_ids: list[str] = []
    assert sorted(await _drain(feed, 40, ack=True, msg_ids=msg_ids)) == sorted(ids)
    assert sorted(msg_ids) == sorted(message_id(i, 1) for i in ids)  # the segment's, not an offset
    assert await feed.fetch(10, timeout_s=0.3) == []  # nothing more, nothing twice
    await feed.close()


async def test_unacknowledged_deliveries_come_back_after_a_restart(backend: str, cfg: CloudConfig,
                                                                   db: SQLMetadataDB, cleanup: None) -> None:
    ids = fill_outbox(db, 12)
    await _publish(backend, cfg, db)
    name = f"c{uuid.uuid4().hex[:8]}"
    nc = await connect(cfg.relay) if backend == "nats" else None

    def open_one() -> SegmentFeed:
        if nc is None:
            return OutboxFeed(db, name)
        # re-delivery soon, yet late enough that an ack sent on a loaded machine lands in time
        return JetStreamFeed(nc.jetstream(), cfg.relay, durable=name, ack_wait_s=3.0)

    feed = open_one()
    first = await feed.fetch(5, timeout_s=2.0)
    assert len(first) == 5
    await feed.ack(first[:3])  # the consumer dies holding two unacknowledged deliveries
    if nc is None:
        await feed.close()  # a JetStream durable keeps its state on the server
    again = open_one()
    rest = await _drain(again, 9, ack=True)
    acked = {d.announcement.segment_id for d in first[:3]}
    assert sorted(rest) == sorted(set(ids) - acked), "every unacknowledged one, and none acknowledged, comes again"
    await again.close()
    if nc is not None:
        await nc.close()


async def test_a_message_that_is_no_announcement_is_counted_and_skipped(backend: str, cfg: CloudConfig,
                                                                        db: SQLMetadataDB, cleanup: None) -> None:
    db.create_upload(UploadRecord("v" * 32, "car-0", 1, 0, "e" * 64, "s", "f", "in_progress", 1, 10 * S))
    good = fill_outbox(db, 2)
    bad = SegmentRow(str(uuid.uuid4()), "car-0", 0, S, "snap", "e" * 64, "v" * 32, "raw/k", b"r", 1)
    db.commit_ingest("v" * 32, [bad], [OutboxRow(0, "segments.raw", "car-0", bad.segment_id, b"\x00junk", 1)], 1)
    await _publish(backend, cfg, db)
    feed = await open_feed(backend, cfg, db, f"c{uuid.uuid4().hex[:8]}")
    make_effects_table(db)

    async def handle(ann: Announcement) -> Effect:
        return count_effect(ann.segment_id)

    consumer = SegmentConsumer(feed, db, "mining")
    for _ in range(20):
        await consumer.poll(handle, batch=10, timeout_s=0.3)
        if consumer.malformed and consumer.applied == 2:
            break
    assert applied_counts(db) == dict.fromkeys(good, 1) and consumer.malformed == 1
    await consumer.close()


async def test_a_restarted_consumer_skips_what_its_inbox_holds(backend: str, cfg: CloudConfig, db: SQLMetadataDB,
                                                               cleanup: None) -> None:
    ids = fill_outbox(db, 10)
    await _publish(backend, cfg, db)
    make_effects_table(db)
    for sid in ids[:4]:  # applied and committed, then the consumer died before acknowledging
        assert db.apply_once("mining", message_id(sid, 1), count_effect(sid))

    async def handle(ann: Announcement) -> Effect:
        return count_effect(ann.segment_id)

    consumer = SegmentConsumer(await open_feed(backend, cfg, db, f"c{uuid.uuid4().hex[:8]}"), db, "mining")
    for _ in range(20):
        await consumer.poll(handle, batch=3, timeout_s=0.3)
        if consumer.applied + consumer.duplicates == 10:
            break
    assert consumer.applied == 6 and consumer.duplicates == 4
    assert applied_counts(db) == dict.fromkeys(ids, 1)
    await consumer.close()


async def test_unknown_backend_is_a_typed_error(cfg: CloudConfig, db: SQLMetadataDB) -> None:
    from cloud_ingest.errors import UnknownBackend

    with pytest.raises(UnknownBackend, match="known: nats, outbox"):
        await open_feed("kafka", cfg, db, "x")
