"""SQL rows of the metadata DB: the column lists both back-ends select, and their decoders (pure)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from cloud_ingest.storage.metadata.protocol import OutboxRow, SegmentRow, UploadRecord

UPLOAD_COLS = ("upload_id, vehicle_id, length_bytes, offset_bytes, sha256, snapshot_id, filename, status, "
                "created_ns, expires_ns, bytes_received, segment_ids, lock_owner, lock_until_ns")


class Tx(abc.ABC):
    """One open transaction: ``run`` executes SQL with ``?`` placeholders."""

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute; return all rows (empty for statements without a result)."""

    @abc.abstractmethod
    def changed(self) -> int:
        """Rows changed by the last statement."""


def upload_row(row: Sequence[Any]) -> UploadRecord:
    """An :class:`UploadRecord` from the columns :data:`UPLOAD_COLS`."""
    seg = str(row[11])
    return UploadRecord(str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                        str(row[6]), str(row[7]), int(row[8]), int(row[9]), int(row[10]),
                        tuple(s for s in seg.split(",") if s), str(row[12]), int(row[13]))



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
