"""The queue's tables on every MetadataDB back-end (the ``db`` fixture: SQLite, real PostgreSQL):
message ids from segment versions, relay claims (leases, disjoint concurrent claims, a dead relay's
rows claimed again), the consumers' inbox (effect and inbox row in one transaction, under kill -9
and under concurrent consumers), and the migration off the old SQLite relay cursor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cloud_ingest.config import CloudConfig, DBConfig
from cloud_ingest.queue.announce import message_id
from cloud_ingest.queue.outbox import outbox_msg_id
from cloud_ingest.storage.metadata import schema as db_schema
from cloud_ingest.storage.metadata.protocol import DBOptions, OutboxRow, SegmentRow, Tx, UploadRecord
from cloud_ingest.storage.metadata.registry import backend_class
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from tests.cloud_ingest.conftest import open_config_db
from tests.cloud_ingest.queue.helpers import applied_counts, count_effect, make_effects_table

S = 1_000_000_000
REPO = Path(__file__).parents[3]


def ingest(db: SQLMetadataDB, n: int, versions: dict[int, int] | None = None) -> list[str]:
    """``n`` segments of ``car-1`` with their outbox rows (segment ``i`` at ``versions[i]``); their ids."""
    db.create_upload(UploadRecord("a" * 32, "car-1", 1, 0, "f" * 64, "s", "f", "in_progress", 1, 10 * S))
    rows = [SegmentRow(f"seg-{i:03d}", "car-1", i * S, i * S + S, "snap", "f" * 64, "a" * 32, "raw/k", b"r", 1,
                       version=(versions or {}).get(i, 1)) for i in range(n)]
    db.commit_ingest("a" * 32, rows, [OutboxRow(0, "segments.raw", "car-1", r.segment_id, b"p", 0, version=7)
                                      for r in rows], 5)
    return [r.segment_id for r in rows]


def unpublished(db: SQLMetadataDB) -> int:
    with db.transaction() as tx:
        return int(tx.run("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL")[0][0])


@pytest.fixture
def effects(db: SQLMetadataDB) -> None:
    """A consumer's own table: how many times each segment's effect was applied."""
    make_effects_table(db)


def test_outbox_rows_carry_their_segment_version_as_the_message_id(db: SQLMetadataDB) -> None:
    ids = ingest(db, 3, versions={2: 2})
    rows = db.read_outbox(0, 10)
    # the version comes from the segment row, not from what the caller put in the outbox row (7)
    assert [(r.segment_id, r.version) for r in rows] == [(ids[0], 1), (ids[1], 1), (ids[2], 2)]
    assert [outbox_msg_id(r) for r in rows] == [f"{ids[0]}:1", f"{ids[1]}:1", f"{ids[2]}:2"]
    got = db.get_segment(ids[2])
    assert got is not None and got.version == 2
    with pytest.raises(ValueError, match="start at 1"):
        message_id(ids[0], 0)


def test_claims_lease_rows_until_marked_given_back_or_expired(db: SQLMetadataDB) -> None:
    ingest(db, 10)
    a = [r.offset for r in db.claim_outbox("A", 4, now_ns=1 * S, lease_ns=10 * S)]
    b = [r.offset for r in db.claim_outbox("B", 10, now_ns=2 * S, lease_ns=10 * S)]
    assert len(a) == 4 and len(b) == 6 and max(a) < min(b)
    assert db.claim_outbox("C", 10, now_ns=3 * S, lease_ns=10 * S) == []  # every row under a live lease
    assert db.mark_published("A", a[:2], 4 * S, release=a[2:]) == 2  # two acknowledged, two given back
    c = [r.offset for r in db.claim_outbox("C", 10, now_ns=5 * S, lease_ns=10 * S)]
    assert c == a[2:]
    assert db.mark_published("X", [], 6 * S, release=c) == 0  # only the owner gives its claim back
    assert db.claim_outbox("D", 10, now_ns=6 * S, lease_ns=10 * S) == []
    # B died: its lease ran out at 12 s, and another relay takes its rows
    assert [r.offset for r in db.claim_outbox("D", 10, now_ns=13 * S, lease_ns=10 * S)] == b
    assert db.mark_published("B", b, 14 * S) == 6  # B's late PubAcks still prove publication
    assert db.mark_published("D", b, 14 * S) == 0
    assert db.mark_published("C", c, 15 * S) == 2 and unpublished(db) == 0
    assert db.claim_outbox("E", 10, now_ns=99 * S, lease_ns=S) == []
    with pytest.raises(ValueError, match="owner"):
        db.claim_outbox("", 1, 0, 1)


def test_concurrent_claims_take_disjoint_rows(db: SQLMetadataDB, cloud_config: CloudConfig) -> None:
    ingest(db, 80)
    relays = [open_config_db(cloud_config) for _ in range(8)]
    barrier = threading.Barrier(len(relays))
    got: dict[int, list[int]] = {}

    def claim(i: int, d: SQLMetadataDB) -> None:
        barrier.wait()
        got[i] = [r.offset for r in d.claim_outbox(f"relay-{i}", 10, now_ns=S, lease_ns=60 * S)]

    threads = [threading.Thread(target=claim, args=(i, d)) for i, d in enumerate(relays)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in relays:
        d.close()
    offsets = [o for claimed in got.values() for o in claimed]
    assert len(offsets) == 80 and len(set(offsets)) == 80, "each row claimed by exactly one relay"


# Row locks are PostgreSQL's: SQLite's claims are serialised by its one write lock instead.
@pytest.mark.parametrize("db_config", ["postgres"], indirect=True)
def test_postgres_claims_skip_rows_another_claim_has_locked(db: SQLMetadataDB, cloud_config: CloudConfig) -> None:
    import psycopg

    ingest(db, 20)
    with psycopg.connect(cloud_config.db.dsn) as conn:  # another relay in the middle of its claim
        conn.execute(f'SET search_path TO "{cloud_config.db.schema}"')
        held = [int(r[0]) for r in conn.execute(
            "SELECT outbox_offset FROM outbox ORDER BY outbox_offset LIMIT 5 FOR UPDATE").fetchall()]
        got: list[int] = []
        t = threading.Thread(target=lambda: got.extend(
            r.offset for r in db.claim_outbox("B", 10, now_ns=S, lease_ns=60 * S)))
        t.start()
        t.join(5)
        waited = t.is_alive()
        conn.rollback()
        t.join()
    assert not waited, "a claim must skip locked rows, not wait for them"
    assert len(got) == 10 and not set(got) & set(held) and min(got) > max(held)


def test_apply_once_applies_an_effect_once_per_consumer(db: SQLMetadataDB, effects: None) -> None:
    mid = message_id("seg-1", 1)
    assert db.applied("enrichment", [mid, "seg-2:1"]) == set()
    assert db.apply_once("enrichment", mid, count_effect("seg-1"))
    assert not db.apply_once("enrichment", mid, count_effect("seg-1"))  # a re-delivery: not applied again
    assert db.apply_once("mining", mid, count_effect("seg-1"))  # another consumer has its own inbox
    assert applied_counts(db) == {"seg-1": 2}
    assert db.applied("enrichment", [mid, "seg-2:1"]) == {mid}
    assert db.applied("enrichment", [f"seg-{i}:1" for i in range(1200)]) == {mid}  # beyond one IN list


def test_an_effect_that_raises_rolls_back_its_inbox_row(db: SQLMetadataDB, effects: None) -> None:
    def failing(tx: Tx) -> None:
        count_effect("seg-1")(tx)
        raise RuntimeError("labeling model crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        db.apply_once("labeling", "seg-1:1", failing)
    assert db.applied("labeling", ["seg-1:1"]) == set() and applied_counts(db) == {}
    assert db.apply_once("labeling", "seg-1:1", count_effect("seg-1"))  # the re-delivery applies it
    assert applied_counts(db) == {"seg-1": 1}


def test_concurrent_consumers_of_one_name_apply_a_message_once(db: SQLMetadataDB, cloud_config: CloudConfig,
                                                               effects: None) -> None:
    handles = [open_config_db(cloud_config) for _ in range(6)]
    barrier = threading.Barrier(len(handles))
    results: list[bool] = []

    def slow(tx: Tx) -> None:
        time.sleep(0.05)  # the others arrive while this one's transaction is open
        count_effect("seg-1")(tx)

    def apply(d: SQLMetadataDB) -> None:
        barrier.wait()
        results.append(d.apply_once("mining", "seg-1:1", slow))

    threads = [threading.Thread(target=apply, args=(d,)) for d in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in handles:
        d.close()
    assert sorted(results) == [False] * 5 + [True] and applied_counts(db) == {"seg-1": 1}


_DIE_IN_EFFECT = """
import os, signal, sys
from cloud_ingest.storage.metadata.registry import open_db
db = open_db(sys.argv[1], sqlite_path=sys.argv[2], dsn=sys.argv[3], schema=sys.argv[4])
def effect(tx):
    tx.run("INSERT INTO effects (segment_id, applied) VALUES ('seg-1', 1)")
    os.kill(os.getpid(), signal.SIGKILL)  # after the effect's write, before the commit
db.apply_once("mining", "seg-1:1", effect)
"""


def test_a_consumer_killed_inside_its_effect_applied_nothing(db: SQLMetadataDB, cloud_config: CloudConfig,
                                                            effects: None) -> None:
    c = cloud_config.db
    proc = subprocess.run([sys.executable, "-c", _DIE_IN_EFFECT, c.backend, str(cloud_config.sqlite_path), c.dsn,
                           c.schema], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert db.applied("mining", ["seg-1:1"]) == set() and applied_counts(db) == {}
    assert db.apply_once("mining", "seg-1:1", count_effect("seg-1"))
    assert applied_counts(db) == {"seg-1": 1}


@pytest.fixture
def old_db(cloud_config: CloudConfig, tmp_path: Path) -> Iterator[SQLMetadataDB]:
    """A fresh database of the same back-end, not migrated."""
    c = replace(cloud_config.db, schema=cloud_config.db.schema + "_old") if cloud_config.db.backend == "postgres" \
        else DBConfig()
    d = backend_class(c.backend).from_options(DBOptions(str(tmp_path / "old.sqlite"), c.dsn, c.schema))
    yield d
    from cloud_ingest.storage.metadata.postgres import PostgresDB

    if isinstance(d, PostgresDB):
        d.drop_schema()
    d.close()


def test_migration_marks_what_the_sqlite_relay_cursor_had_published(old_db: SQLMetadataDB) -> None:
    with old_db.transaction() as tx:
        tx.run(db_schema.VERSION_TABLE)
        for version in (1, 2, 3, 4):
            for stmt in db_schema.statements(version, old_db.dialect):
                tx.run(stmt)
            tx.run("INSERT INTO schema_version (version, applied_ns) VALUES (?, 0)", (version,))
        for i in range(3):
            tx.run("INSERT INTO outbox (topic, msg_key, segment_id, payload, created_ns) VALUES (?, ?, ?, ?, ?)",
                   ("segments.raw", "car-1", f"seg-{i}", b"p", 100 + i))
        tx.run("INSERT INTO outbox_consumers (consumer, consumed_offset) VALUES ('__relay__', 2), ('mining', 1)")
    assert old_db.migrate() == db_schema.LATEST
    with old_db.transaction() as tx:
        assert tx.run("SELECT segment_id, published_ns FROM outbox ORDER BY outbox_offset") == [
            ("seg-0", 100), ("seg-1", 101), ("seg-2", None)]
        assert tx.run("SELECT consumer FROM outbox_consumers") == [("mining",)]
    assert [outbox_msg_id(r) for r in old_db.read_outbox(0, 10)] == ["seg-0:1", "seg-1:1", "seg-2:1"]
