"""What the queue tests share: the NATS server of the tests, a stream of a test's own, outbox
rows to relay, and a consumer's effect (a count per segment in an ``effects`` table) with its
readers. The consumer process of the kill test uses the same effect."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from cloud_ingest.config import RelayConfig
from cloud_ingest.queue.announce import Announcement
from cloud_ingest.storage.metadata.protocol import Effect, OutboxRow, SegmentRow, Tx, UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB

REPO = Path(__file__).parents[3]
NATS_URL = os.environ.get("AVDATA_TEST_NATS_URL", "nats://127.0.0.1:4222")
S = 1_000_000_000


def nats_unreachable() -> str | None:
    """Why the NATS server cannot be reached, or ``None`` (give it to :func:`tests.helpers.require`:
    a skip locally, a failure under CI)."""
    host, port = NATS_URL.removeprefix("nats://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return None
    except OSError as exc:
        return f"NATS at {NATS_URL} unreachable: {exc}"


#: Marks a test that needs the NATS server (the ``nats_server`` fixture of tests/cloud_ingest/conftest.py).
needs_nats = pytest.mark.usefixtures("nats_server")


def relay_config() -> RelayConfig:
    """A stream and subject prefix of this test alone."""
    tag = uuid.uuid4().hex[:10]
    return RelayConfig(nats_url=NATS_URL, stream=f"T_{tag}", subject_prefix=f"t{tag}.raw", batch=16,
                       poll_interval_s=0.05)


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


def count_effect(segment_id: str) -> Effect:
    """A consumer's effect: one more application of ``segment_id`` in its ``effects`` table."""
    def effect(tx: Tx) -> None:
        tx.run("INSERT INTO effects (segment_id, applied) VALUES (?, 1) "
               "ON CONFLICT (segment_id) DO UPDATE SET applied = effects.applied + 1", (segment_id,))
    return effect


def make_effects_table(db: SQLMetadataDB) -> None:
    with db.transaction() as tx:
        tx.run("CREATE TABLE effects (segment_id TEXT PRIMARY KEY, applied INTEGER NOT NULL)")


def applied_counts(db: SQLMetadataDB) -> dict[str, int]:
    with db.transaction() as tx:
        return {str(r[0]): int(r[1]) for r in tx.run("SELECT segment_id, applied FROM effects")}
