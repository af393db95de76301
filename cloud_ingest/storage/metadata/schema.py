"""Versioned migrations of the metadata DB, written once for both SQL dialects.

``{blob}``, ``{serial_pk}`` are filled per dialect. A migration is applied in one transaction
together with its ``schema_version`` row, so a crash never leaves half a migration.
"""

from __future__ import annotations

DIALECTS = {
    "sqlite": {"blob": "BLOB", "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgres": {"blob": "BYTEA", "serial_pk": "BIGSERIAL PRIMARY KEY"},
}

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_ns BIGINT)"

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE vehicles (
            vehicle_id TEXT PRIMARY KEY, salt {blob} NOT NULL, token_hash {blob} NOT NULL,
            created_ns BIGINT NOT NULL, rotated_ns BIGINT NOT NULL)""",
        """CREATE TABLE uploads (
            upload_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, length_bytes BIGINT NOT NULL,
            offset_bytes BIGINT NOT NULL, sha256 TEXT NOT NULL, snapshot_id TEXT NOT NULL,
            filename TEXT NOT NULL, status TEXT NOT NULL, created_ns BIGINT NOT NULL,
            expires_ns BIGINT NOT NULL, bytes_received BIGINT NOT NULL DEFAULT 0,
            segment_ids TEXT NOT NULL DEFAULT '', lock_owner TEXT NOT NULL DEFAULT '',
            lock_until_ns BIGINT NOT NULL DEFAULT 0)""",
        "CREATE INDEX uploads_vehicle_sha ON uploads (vehicle_id, sha256, status)",
        "CREATE INDEX uploads_expiry ON uploads (status, expires_ns)",
        """CREATE TABLE segments (
            segment_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, start_ns BIGINT NOT NULL,
            end_ns BIGINT NOT NULL, snapshot_id TEXT NOT NULL, snapshot_sha256 TEXT NOT NULL,
            upload_id TEXT NOT NULL, raw_key TEXT NOT NULL, record {blob} NOT NULL,
            created_ns BIGINT NOT NULL)""",
        "CREATE INDEX segments_vehicle_start ON segments (vehicle_id, start_ns)",
        "CREATE INDEX segments_start ON segments (start_ns)",
        "CREATE INDEX segments_sha ON segments (vehicle_id, snapshot_sha256)",
        """CREATE TABLE outbox (
            outbox_offset {serial_pk}, topic TEXT NOT NULL, msg_key TEXT NOT NULL,
            segment_id TEXT NOT NULL, payload {blob} NOT NULL, created_ns BIGINT NOT NULL)""",
        """CREATE TABLE quarantine (
            upload_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, reason TEXT NOT NULL,
            detail TEXT NOT NULL, object_path TEXT NOT NULL, created_ns BIGINT NOT NULL)""",
    )),
    (2, (
        """CREATE TABLE outbox_consumers (
            consumer TEXT PRIMARY KEY, consumed_offset BIGINT NOT NULL)""",
    )),
    (3, (
        # relay: rows are marked once NATS acknowledged them (PostgreSQL picks rows by this column)
        "ALTER TABLE outbox ADD COLUMN published_ns BIGINT",
        "CREATE INDEX outbox_unpublished ON outbox (outbox_offset) WHERE published_ns IS NULL",
        # calibration registry (IF NOT EXISTS: embedded DBs may hold the table from before it moved here)
        """CREATE TABLE IF NOT EXISTS calibration_versions (
            vehicle_id TEXT NOT NULL, version TEXT NOT NULL, valid_from_ns BIGINT NOT NULL,
            valid_to_ns BIGINT, bundle {blob} NOT NULL, added_ns BIGINT NOT NULL,
            PRIMARY KEY (vehicle_id, version), UNIQUE (vehicle_id, valid_from_ns))""",
        # joined segments replace short ones; labels ("trigger:<kind>", "tag:<tag>") serve queries
        "ALTER TABLE segments ADD COLUMN superseded_by TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE segment_labels (
            label TEXT NOT NULL, segment_id TEXT NOT NULL, PRIMARY KEY (label, segment_id))""",
        """CREATE TABLE operators (
            operator_id TEXT PRIMARY KEY, salt {blob} NOT NULL, token_hash {blob} NOT NULL,
            created_ns BIGINT NOT NULL)""",
    )),
    (4, (
        # processed outputs are written after the commit: rows still NULL are repaired by the sweeper
        "ALTER TABLE segments ADD COLUMN processed_ns BIGINT",
        "CREATE INDEX segments_unprocessed ON segments (created_ns) WHERE processed_ns IS NULL",
        "CREATE INDEX uploads_stalled ON uploads (status) WHERE offset_bytes = length_bytes",
    )),
    (5, (
        # a segment record's version (1 at ingest; records are immutable) names its announcement:
        # the message id is "<segment_id>:<version>", the same in every database and on every feed
        "ALTER TABLE segments ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE outbox ADD COLUMN segment_version INTEGER NOT NULL DEFAULT 1",
        # relay claims: a short transaction leases rows, the publish runs outside any transaction
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE outbox ADD COLUMN lease_until_ns BIGINT NOT NULL DEFAULT 0",
        # the SQLite relay used to publish after a cursor row: what it had passed is published
        """UPDATE outbox SET published_ns = created_ns WHERE published_ns IS NULL AND outbox_offset <=
            COALESCE((SELECT consumed_offset FROM outbox_consumers WHERE consumer = '__relay__'), 0)""",
        "DELETE FROM outbox_consumers WHERE consumer = '__relay__'",
        # each consumer's applied message ids, written in the transaction of the consumer's effect
        """CREATE TABLE consumer_inbox (
            consumer TEXT NOT NULL, msg_id TEXT NOT NULL, applied_ns BIGINT NOT NULL,
            PRIMARY KEY (consumer, msg_id))""",
    )),
)

LATEST = MIGRATIONS[-1][0]


def statements(version: int, dialect: str) -> list[str]:
    """The SQL of migration ``version`` for ``dialect`` (``sqlite`` or ``postgres``)."""
    subs = DIALECTS[dialect]
    for v, stmts in MIGRATIONS:
        if v == version:
            return [s.format(**subs) for s in stmts]
    raise KeyError(version)
