"""The SQL shared by both metadata back-ends; each back-end supplies transactions and locks.

Locking: a write to an upload first takes a *lease* (``lock_owner``, ``lock_until_ns``) in a short
transaction serialised per upload (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
``pg_advisory_xact_lock`` on the upload id). The lease, not an open transaction, is held while a
PATCH body streams in, so no DB transaction ever waits on the network, a daemon that dies loses
its lease after ``lease_ns``, and any daemon can then resume the upload.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from cloud_ingest import db_schema
from cloud_ingest.db import (
    COMPLETE,
    IN_PROGRESS,
    UploadRecord,
    VehicleRow,
)
from cloud_ingest.errors import UploadLocked, UploadNotFound, VehicleExists

_UPLOAD_COLS = ("upload_id, vehicle_id, length_bytes, offset_bytes, sha256, snapshot_id, filename, status, "
                "created_ns, expires_ns, bytes_received, segment_ids, lock_owner, lock_until_ns")


class Tx(abc.ABC):
    """One open transaction: ``run`` executes SQL with ``?`` placeholders."""

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute; return all rows (empty for statements without a result)."""

    @abc.abstractmethod
    def changed(self) -> int:
        """Rows changed by the last statement."""


def _upload(row: Sequence[Any]) -> UploadRecord:
    seg = str(row[11])
    return UploadRecord(str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                        str(row[6]), str(row[7]), int(row[8]), int(row[9]), int(row[10]),
                        tuple(s for s in seg.split(",") if s), str(row[12]), int(row[13]))


class SQLCore(abc.ABC):
    """Schema, vehicles and uploads over SQL; see the module docstring for locking.

    :class:`cloud_ingest.db_sql_segments.SQLMetadataDB` adds segments, the outbox and operators."""

    dialect: str = ""

    @abc.abstractmethod
    def transaction(self, durable: bool = True) -> AbstractContextManager[Tx]:
        """A write transaction (serialised with other writers where the engine needs it).

        ``durable=False`` may lose the commit on power loss (never corrupts): only for state a
        client can recover by itself, i.e. upload leases and offsets, which a tus client re-reads
        with HEAD (the data bytes themselves are fsynced before the offset is recorded)."""

    @abc.abstractmethod
    def _lock_named(self, tx: Tx, name: str) -> None:
        """Serialise the holders of the lock ``name`` until the end of ``tx``."""

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
            tx.run(f"INSERT INTO uploads ({_UPLOAD_COLS}) VALUES ({', '.join('?' * 14)})",
                   (rec.upload_id, rec.vehicle_id, rec.length_bytes, rec.offset_bytes, rec.sha256,
                    rec.snapshot_id, rec.filename, rec.status, rec.created_ns, rec.expires_ns,
                    rec.bytes_received, ",".join(rec.segment_ids), rec.lock_owner, rec.lock_until_ns))

    def _get_upload(self, tx: Tx, upload_id: str) -> UploadRecord | None:
        rows = tx.run(f"SELECT {_UPLOAD_COLS} FROM uploads WHERE upload_id = ?", (upload_id,))
        return _upload(rows[0]) if rows else None

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self.transaction() as tx:
            return self._get_upload(tx, upload_id)

    def find_complete_upload(self, vehicle_id: str, sha256: str) -> UploadRecord | None:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {_UPLOAD_COLS} FROM uploads WHERE vehicle_id = ? AND sha256 = ? "
                          "AND status = ? ORDER BY created_ns LIMIT 1", (vehicle_id, sha256, COMPLETE))
        return _upload(rows[0]) if rows else None

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
            rows = tx.run(f"SELECT {_UPLOAD_COLS} FROM uploads WHERE status = ? AND offset_bytes = length_bytes "
                          "ORDER BY created_ns LIMIT ?", (IN_PROGRESS, limit))
        return [_upload(r) for r in rows]

    def expired_uploads(self, now_ns: int) -> list[UploadRecord]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {_UPLOAD_COLS} FROM uploads WHERE status = ? AND expires_ns < ? "
                          "AND lock_until_ns < ?", (IN_PROGRESS, now_ns, now_ns))
        return [_upload(r) for r in rows]
