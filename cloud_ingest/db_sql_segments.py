"""Segments, their labels, the outbox, quarantine and operators over SQL (both back-ends).

Completing an upload is one transaction (:meth:`SQLMetadataDB.commit_ingest`): the snapshot's
segments, an outbox row per new segment, and the upload marked complete. When a join planner is
given, the vehicle's writers are serialised (SQLite: the write lock; PostgreSQL: an advisory lock
per vehicle) while the planner sees the vehicle's live neighbours, so two daemons ingesting
adjacent snapshots at once cannot both miss each other.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

from cloud_ingest.db import (
    COMPLETE,
    QUARANTINED,
    SEGMENTS_TOPIC,
    JoinPlanner,
    OperatorRow,
    OutboxRow,
    QuarantineRow,
    SegmentQuery,
    SegmentRow,
)
from cloud_ingest.db_sql import SQLCore, Tx
from cloud_ingest.errors import OperatorExists

SEGMENT_COLS = ("segment_id, vehicle_id, start_ns, end_ns, snapshot_id, snapshot_sha256, upload_id, "
                "raw_key, record, created_ns, superseded_by")
OUTBOX_COLS = "outbox_offset, topic, msg_key, segment_id, payload, created_ns"


def segment_row(row: Sequence[Any]) -> SegmentRow:
    """A :class:`SegmentRow` from the columns :data:`SEGMENT_COLS` (labels are not read back)."""
    return SegmentRow(str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                      str(row[6]), str(row[7]), bytes(row[8]), int(row[9]), superseded_by=str(row[10]))


def outbox_row(r: Sequence[Any]) -> OutboxRow:
    """An :class:`OutboxRow` from the columns :data:`OUTBOX_COLS`."""
    return OutboxRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4]), int(r[5]))


class SQLMetadataDB(SQLCore):
    """:class:`cloud_ingest.db.MetadataDB` over SQL; back-ends add transactions, locks and the relay."""

    @abc.abstractmethod
    def publish_outbox(self, limit: int, publish: Callable[[list[OutboxRow]], int]) -> int:
        """See :meth:`cloud_ingest.db.MetadataDB.publish_outbox`."""

    def _insert_segment(self, tx: Tx, s: SegmentRow) -> bool:
        tx.run(f"INSERT INTO segments ({SEGMENT_COLS}) VALUES ({', '.join('?' * 11)}) ON CONFLICT DO NOTHING",
               (s.segment_id, s.vehicle_id, s.start_ns, s.end_ns, s.snapshot_id, s.snapshot_sha256,
                s.upload_id, s.raw_key, s.record, s.created_ns, s.superseded_by))
        if tx.changed() != 1:
            return False
        for label in sorted(set(s.labels)):
            tx.run("INSERT INTO segment_labels (label, segment_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (label, s.segment_id))
        return True

    def commit_ingest(self, upload_id: str, segments: list[SegmentRow], outbox: list[OutboxRow],
                      now_ns: int, planner: JoinPlanner | None = None, join_gap_ns: int = 0) -> list[str]:
        by_id = {o.segment_id: o for o in outbox}
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
                for old, replacement in sorted(plan.supersede.items()):
                    tx.run("UPDATE segments SET superseded_by = ? WHERE segment_id = ? AND superseded_by = ''",
                           (replacement, old))
                superseded = set(plan.supersede)
            announce = [sid for sid in new if sid not in superseded and sid in by_id]
            if announce:
                self._lock_outbox(tx)
            for sid in announce:
                o = by_id[sid]
                tx.run("INSERT INTO outbox (topic, msg_key, segment_id, payload, created_ns) "
                       "VALUES (?, ?, ?, ?, ?)", (o.topic or SEGMENTS_TOPIC, o.key, sid, o.payload, now_ns))
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

    # -- outbox --------------------------------------------------------------------------
    def read_outbox(self, after_offset: int, limit: int) -> list[OutboxRow]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {OUTBOX_COLS} FROM outbox WHERE outbox_offset > ? "
                          "ORDER BY outbox_offset LIMIT ?", (after_offset, limit))
        return [outbox_row(r) for r in rows]

    def get_consumer_offset(self, consumer: str) -> int:
        with self.transaction() as tx:
            rows = tx.run("SELECT consumed_offset FROM outbox_consumers WHERE consumer = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    def set_consumer_offset(self, consumer: str, offset: int) -> None:
        with self.transaction() as tx:
            self._set_offset(tx, consumer, offset)

    @staticmethod
    def _set_offset(tx: Tx, consumer: str, offset: int) -> None:
        tx.run("INSERT INTO outbox_consumers (consumer, consumed_offset) VALUES (?, ?) "
               "ON CONFLICT (consumer) DO UPDATE SET consumed_offset = excluded.consumed_offset",
               (consumer, offset))

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
