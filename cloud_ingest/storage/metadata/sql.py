"""The SQL shared by both metadata back-ends; each back-end supplies transactions and locks.

Locking: a write to an upload first takes a *lease* (``lock_owner``, ``lock_until_ns``) in a short
transaction serialised per upload (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
``pg_advisory_xact_lock`` on the upload id). The lease, not an open transaction, is held while a
PATCH body streams in, so no DB transaction ever waits on the network, a daemon that dies loses
its lease after ``lease_ns``, and any daemon can then resume the upload.

Segments, their labels, quarantine and operators over SQL (both back-ends); the outbox, the
relay's claims and the consumers' inbox are in :mod:`cloud_ingest.storage.metadata.queue_tables`.

Completing an upload is one transaction (:meth:`SQLMetadataDB.commit_ingest`): the snapshot's
segments, an outbox row per new segment, and the upload marked complete. When a join planner is
given, the vehicle's writers are serialised (SQLite: the write lock; PostgreSQL: an advisory lock
per vehicle) while the planner sees the vehicle's live neighbours, so two daemons ingesting
adjacent snapshots at once cannot both miss each other.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from typing import Any

from cloud_ingest.errors import OperatorExists, UploadLocked, UploadNotFound, VehicleExists
from cloud_ingest.storage.metadata import schema as db_schema
from cloud_ingest.storage.metadata.protocol import (
    COMPLETE,
    IN_PROGRESS,
    QUARANTINED,
    SEGMENTS_TOPIC,
    DBOptions,
    JoinPlanner,
    OperatorRow,
    OutboxRow,
    QuarantineRow,
    SegmentQuery,
    SegmentRow,
    UploadRecord,
    VehicleRow,
)
from cloud_ingest.storage.metadata.queue_tables import QueueTables
from cloud_ingest.storage.metadata.rows import (
    SEGMENT_COLS,
    UPLOAD_COLS,
    Tx,
    segment_row,
    upload_row,
)


class SQLMetadataDB(QueueTables):
    """:class:`cloud_ingest.storage.metadata.protocol.MetadataDB` over SQL: schema, vehicles, uploads, segments,
    quarantine and operators, and (from :class:`QueueTables`) the outbox, relay claims and inbox.
    Back-ends add transactions and locks (see the module docstring for locking)."""

    dialect: str = ""

    @classmethod
    @abc.abstractmethod
    def from_options(cls, opts: DBOptions) -> SQLMetadataDB:
        """Open the database that ``opts`` names."""

    @abc.abstractmethod
    def transaction(self, durable: bool = True) -> AbstractContextManager[Tx]:
        """A write transaction (serialised with other writers where the engine needs it).

        ``durable=False`` may lose the commit on power loss (never corrupts): only for state a
        client can recover by itself, i.e. upload leases and offsets, which a tus client re-reads
        with HEAD (the data bytes themselves are fsynced before the offset is recorded)."""

    @abc.abstractmethod
    def _lock_named(self, tx: Tx, name: str) -> None:
        """Serialise the holders of the lock ``name`` until the end of ``tx``."""

    def lock(self, tx: Tx, name: str) -> None:
        """Serialise the holders of the lock ``name`` until the end of ``tx`` (for callers that keep
        tables of their own in this database, e.g. the downstream services' migrations)."""
        self._lock_named(tx, name)

    def _lock_upload(self, tx: Tx, upload_id: str) -> None:
        """Serialise writers of one upload until the end of ``tx``."""
        self._lock_named(tx, "upload:" + upload_id)

    @abc.abstractmethod
    def _lock_outbox(self, tx: Tx) -> None:
        """Serialise outbox writers until commit, so offsets become visible in order."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- schema --------------------------------------------------------------------------
    def migrate(self) -> int:
        with self.transaction() as tx:
            self._lock_upload(tx, "__migrate__")  # daemons starting together migrate one at a time
            tx.run(db_schema.VERSION_TABLE)
            rows = tx.run("SELECT MAX(version) FROM schema_version")
        current = int(rows[0][0] or 0)
        for version, _ in db_schema.MIGRATIONS:
            if version <= current:
                continue
            with self.transaction() as tx:
                self._lock_upload(tx, "__migrate__")
                if tx.run("SELECT 1 FROM schema_version WHERE version = ?", (version,)):
                    continue  # another daemon migrated concurrently
                for stmt in db_schema.statements(version, self.dialect):
                    tx.run(stmt)
                tx.run("INSERT INTO schema_version (version, applied_ns) VALUES (?, 0)", (version,))
            current = version
        return current

    # -- vehicles ------------------------------------------------------------------------
    def add_vehicle(self, row: VehicleRow) -> None:
        with self.transaction() as tx:
            tx.run("INSERT INTO vehicles (vehicle_id, salt, token_hash, created_ns, rotated_ns) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (row.vehicle_id, row.salt, row.token_hash, row.created_ns, row.rotated_ns))
            if tx.changed() == 0:
                raise VehicleExists(f"vehicle {row.vehicle_id!r} is already registered; "
                                    "use 'vehicles rotate' for a new token")

    def set_vehicle_token(self, vehicle_id: str, salt: bytes, token_hash: bytes, now_ns: int) -> bool:
        with self.transaction() as tx:
            tx.run("UPDATE vehicles SET salt = ?, token_hash = ?, rotated_ns = ? WHERE vehicle_id = ?",
                   (salt, token_hash, now_ns, vehicle_id))
            return tx.changed() == 1

    def get_vehicle(self, vehicle_id: str) -> VehicleRow | None:
        with self.transaction() as tx:
            rows = tx.run("SELECT vehicle_id, salt, token_hash, created_ns, rotated_ns FROM vehicles "
                          "WHERE vehicle_id = ?", (vehicle_id,))
        return VehicleRow(rows[0][0], bytes(rows[0][1]), bytes(rows[0][2]), rows[0][3], rows[0][4]) \
            if rows else None

    def list_vehicles(self) -> list[VehicleRow]:
        with self.transaction() as tx:
            rows = tx.run("SELECT vehicle_id, salt, token_hash, created_ns, rotated_ns FROM vehicles "
                          "ORDER BY vehicle_id")
        return [VehicleRow(r[0], bytes(r[1]), bytes(r[2]), r[3], r[4]) for r in rows]

    # -- uploads -------------------------------------------------------------------------
    def create_upload(self, rec: UploadRecord) -> None:
        with self.transaction() as tx:
            tx.run(f"INSERT INTO uploads ({UPLOAD_COLS}) VALUES ({', '.join('?' * 14)})",
                   (rec.upload_id, rec.vehicle_id, rec.length_bytes, rec.offset_bytes, rec.sha256,
                    rec.snapshot_id, rec.filename, rec.status, rec.created_ns, rec.expires_ns,
                    rec.bytes_received, ",".join(rec.segment_ids), rec.lock_owner, rec.lock_until_ns))

    def _get_upload(self, tx: Tx, upload_id: str) -> UploadRecord | None:
        rows = tx.run(f"SELECT {UPLOAD_COLS} FROM uploads WHERE upload_id = ?", (upload_id,))
        return upload_row(rows[0]) if rows else None

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self.transaction() as tx:
            return self._get_upload(tx, upload_id)

    def find_complete_upload(self, vehicle_id: str, sha256: str) -> UploadRecord | None:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {UPLOAD_COLS} FROM uploads WHERE vehicle_id = ? AND sha256 = ? "
                          "AND status = ? ORDER BY created_ns LIMIT 1", (vehicle_id, sha256, COMPLETE))
        return upload_row(rows[0]) if rows else None

    def claim_upload(self, upload_id: str, owner: str, now_ns: int, lease_ns: int) -> UploadRecord:
        with self.transaction(durable=False) as tx:
            self._lock_upload(tx, upload_id)
            rec = self._get_upload(tx, upload_id)
            if rec is None or rec.status != IN_PROGRESS:
                raise UploadNotFound(f"no upload in progress with id {upload_id}")
            if rec.lock_owner and rec.lock_owner != owner and rec.lock_until_ns > now_ns:
                raise UploadLocked(f"upload {upload_id} is being written by another request; "
                                   "retry after HEAD")
            tx.run("UPDATE uploads SET lock_owner = ?, lock_until_ns = ? WHERE upload_id = ?",
                   (owner, now_ns + lease_ns, upload_id))
            got = self._get_upload(tx, upload_id)
        assert got is not None
        return got

    def advance_upload(self, upload_id: str, owner: str, offset_bytes: int, added_bytes: int,
                       expires_ns: int, release: bool) -> UploadRecord:
        with self.transaction(durable=False) as tx:
            self._lock_upload(tx, upload_id)
            tx.run("UPDATE uploads SET offset_bytes = ?, bytes_received = bytes_received + ?, "
                   "expires_ns = ?, lock_owner = CASE WHEN ? THEN '' ELSE lock_owner END "
                   "WHERE upload_id = ? AND lock_owner = ?",
                   (offset_bytes, added_bytes, expires_ns, release, upload_id, owner))
            if tx.changed() != 1:
                raise UploadLocked(f"upload {upload_id}: the write lease was lost")
            got = self._get_upload(tx, upload_id)
        assert got is not None
        return got

    def release_upload(self, upload_id: str, owner: str) -> None:
        with self.transaction(durable=False) as tx:
            self._lock_upload(tx, upload_id)
            tx.run("UPDATE uploads SET lock_owner = '' WHERE upload_id = ? AND lock_owner = ?",
                   (upload_id, owner))

    def delete_upload(self, upload_id: str) -> None:
        with self.transaction() as tx:
            tx.run("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    def stalled_uploads(self, limit: int) -> list[UploadRecord]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {UPLOAD_COLS} FROM uploads WHERE status = ? AND offset_bytes = length_bytes "
                          "ORDER BY created_ns LIMIT ?", (IN_PROGRESS, limit))
        return [upload_row(r) for r in rows]

    def expired_uploads(self, now_ns: int) -> list[UploadRecord]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {UPLOAD_COLS} FROM uploads WHERE status = ? AND expires_ns < ? "
                          "AND lock_until_ns < ?", (IN_PROGRESS, now_ns, now_ns))
        return [upload_row(r) for r in rows]

    # -- segments, quarantine, operators -------------------------------------------------

    def _insert_segment(self, tx: Tx, s: SegmentRow) -> bool:
        tx.run(f"INSERT INTO segments ({SEGMENT_COLS}) VALUES ({', '.join('?' * 12)}) ON CONFLICT DO NOTHING",
               (s.segment_id, s.vehicle_id, s.start_ns, s.end_ns, s.snapshot_id, s.snapshot_sha256,
                s.upload_id, s.raw_key, s.record, s.created_ns, s.superseded_by, s.version))
        if tx.changed() != 1:
            return False
        for label in sorted(set(s.labels)):
            tx.run("INSERT INTO segment_labels (label, segment_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (label, s.segment_id))
        return True

    def commit_ingest(self, upload_id: str, segments: list[SegmentRow], outbox: list[OutboxRow],
                      now_ns: int, planner: JoinPlanner | None = None, join_gap_ns: int = 0) -> list[str]:
        by_id = {o.segment_id: o for o in outbox}
        versions = {s.segment_id: s.version for s in segments}
        new: list[str] = []
        superseded: set[str] = set()
        with self.transaction() as tx:
            if planner is not None and segments:
                self._lock_named(tx, "vehicle:" + segments[0].vehicle_id)
            new = [s.segment_id for s in segments if self._insert_segment(tx, s)]
            if planner is not None and new:
                ids = {s.segment_id for s in segments}
                rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments WHERE vehicle_id = ? AND superseded_by = '' "
                              "AND end_ns >= ? AND start_ns <= ? ORDER BY start_ns, segment_id",
                              (segments[0].vehicle_id, min(s.start_ns for s in segments) - join_gap_ns,
                               max(s.end_ns for s in segments) + join_gap_ns))
                plan = planner([segment_row(r) for r in rows if r[0] not in ids])
                new += [s.segment_id for s in plan.segments if self._insert_segment(tx, s)]
                by_id.update({o.segment_id: o for o in plan.outbox})
                versions.update({s.segment_id: s.version for s in plan.segments})
                for old, replacement in sorted(plan.supersede.items()):
                    tx.run("UPDATE segments SET superseded_by = ? WHERE segment_id = ? AND superseded_by = ''",
                           (replacement, old))
                superseded = set(plan.supersede)
            announce = [sid for sid in new if sid not in superseded and sid in by_id]
            if announce:
                self._lock_outbox(tx)
            for sid in announce:
                o = by_id[sid]
                tx.run("INSERT INTO outbox (topic, msg_key, segment_id, payload, created_ns, segment_version) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (o.topic or SEGMENTS_TOPIC, o.key, sid, o.payload, now_ns, versions[sid]))
            tx.run("UPDATE uploads SET status = ?, segment_ids = ?, lock_owner = '' WHERE upload_id = ?",
                   (COMPLETE, ",".join(s.segment_id for s in segments), upload_id))
        return new

    def quarantine(self, row: QuarantineRow) -> None:
        with self.transaction() as tx:
            tx.run("INSERT INTO quarantine (upload_id, vehicle_id, reason, detail, object_path, created_ns) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (row.upload_id, row.vehicle_id, row.reason, row.detail, row.object_path,
                    row.created_ns))
            tx.run("UPDATE uploads SET status = ?, lock_owner = '' WHERE upload_id = ?",
                   (QUARANTINED, row.upload_id))

    def superseded_segments(self, segment_id: str) -> list[SegmentRow]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments WHERE superseded_by = ? "
                          "ORDER BY start_ns, segment_id", (segment_id,))
        return [segment_row(r) for r in rows]

    def mark_processed(self, segment_ids: list[str], now_ns: int) -> None:
        with self.transaction(durable=False) as tx:  # lost on power loss: the repair pass redoes it
            for sid in segment_ids:
                tx.run("UPDATE segments SET processed_ns = ? WHERE segment_id = ? AND processed_ns IS NULL",
                       (now_ns, sid))

    def unprocessed_segments(self, created_before_ns: int, limit: int) -> list[SegmentRow]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments WHERE processed_ns IS NULL AND created_ns < ? "
                          "ORDER BY created_ns LIMIT ?", (created_before_ns, limit))
        return [segment_row(r) for r in rows]

    def get_quarantine(self, upload_id: str) -> QuarantineRow | None:
        with self.transaction() as tx:
            rows = tx.run("SELECT upload_id, vehicle_id, reason, detail, object_path, created_ns "
                          "FROM quarantine WHERE upload_id = ?", (upload_id,))
        return QuarantineRow(*rows[0]) if rows else None

    # -- read API ------------------------------------------------------------------------
    def list_segments(self, vehicle_id: str | None, limit: int, after_ns: int | None) -> list[SegmentRow]:
        where: list[str] = []
        params: list[Any] = []
        if vehicle_id is not None:
            where.append("vehicle_id = ?")
            params.append(vehicle_id)
        if after_ns is not None:
            where.append("start_ns > ?")
            params.append(after_ns)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments {clause}"
                          "ORDER BY start_ns DESC, segment_id LIMIT ?", (*params, limit))
        return [segment_row(r) for r in rows]

    def query_segments(self, q: SegmentQuery) -> tuple[list[SegmentRow], tuple[int, str] | None]:
        where: list[str] = []
        params: list[Any] = []
        for cond, value in (("vehicle_id = ?", q.vehicle_id), ("end_ns > ?", q.since_ns),
                            ("start_ns < ?", q.until_ns)):
            if value is not None:
                where.append(cond)
                params.append(value)
        if not q.include_superseded:
            where.append("superseded_by = ''")
        for label in (f"trigger:{q.trigger}" if q.trigger else None, f"tag:{q.tag}" if q.tag else None):
            if label is not None:
                where.append("segment_id IN (SELECT segment_id FROM segment_labels WHERE label = ?)")
                params.append(label)
        if q.cursor is not None:
            where.append("(start_ns < ? OR (start_ns = ? AND segment_id > ?))")
            params += [q.cursor[0], q.cursor[0], q.cursor[1]]
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments {clause}"
                          "ORDER BY start_ns DESC, segment_id LIMIT ?", (*params, q.limit + 1))
        page = [segment_row(r) for r in rows[: q.limit]]
        more = len(rows) > q.limit and page
        return page, ((page[-1].start_ns, page[-1].segment_id) if more else None)

    def get_segment(self, segment_id: str) -> SegmentRow | None:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {SEGMENT_COLS} FROM segments WHERE segment_id = ?", (segment_id,))
        return segment_row(rows[0]) if rows else None

    def segment_ids_for_sha(self, vehicle_id: str, sha256: str) -> list[str]:
        with self.transaction() as tx:
            rows = tx.run("SELECT segment_id FROM segments WHERE vehicle_id = ? AND snapshot_sha256 = ? "
                          "ORDER BY start_ns", (vehicle_id, sha256))
        return [str(r[0]) for r in rows]

    # -- operators -----------------------------------------------------------------------
    def add_operator(self, row: OperatorRow) -> None:
        with self.transaction() as tx:
            tx.run("INSERT INTO operators (operator_id, salt, token_hash, created_ns) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT DO NOTHING", (row.operator_id, row.salt, row.token_hash, row.created_ns))
            if tx.changed() == 0:
                raise OperatorExists(f"operator {row.operator_id!r} already exists")

    def get_operator(self, operator_id: str) -> OperatorRow | None:
        with self.transaction() as tx:
            rows = tx.run("SELECT operator_id, salt, token_hash, created_ns FROM operators WHERE operator_id = ?",
                          (operator_id,))
        return OperatorRow(str(rows[0][0]), bytes(rows[0][1]), bytes(rows[0][2]), int(rows[0][3])) \
            if rows else None
