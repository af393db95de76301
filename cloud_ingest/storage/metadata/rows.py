"""SQL rows of the metadata DB: the column lists both back-ends select, and their decoders (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cloud_ingest.storage.metadata.protocol import OutboxRow, SegmentRow, Tx, UploadRecord

__all__ = ["OUTBOX_COLS", "SEGMENT_COLS", "UPLOAD_COLS", "Tx", "outbox_row", "segment_row", "upload_row"]

UPLOAD_COLS = ("upload_id, vehicle_id, length_bytes, offset_bytes, sha256, snapshot_id, filename, status, "
                "created_ns, expires_ns, bytes_received, segment_ids, lock_owner, lock_until_ns")

def upload_row(row: Sequence[Any]) -> UploadRecord:
    """An :class:`UploadRecord` from the columns :data:`UPLOAD_COLS`."""
    seg = str(row[11])
    return UploadRecord(str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                        str(row[6]), str(row[7]), int(row[8]), int(row[9]), int(row[10]),
                        tuple(s for s in seg.split(",") if s), str(row[12]), int(row[13]))



SEGMENT_COLS = ("segment_id, vehicle_id, start_ns, end_ns, snapshot_id, snapshot_sha256, upload_id, "
                "raw_key, record, created_ns, superseded_by, version")
OUTBOX_COLS = "outbox_offset, topic, msg_key, segment_id, payload, created_ns, segment_version"


def segment_row(row: Sequence[Any]) -> SegmentRow:
    """A :class:`SegmentRow` from the columns :data:`SEGMENT_COLS` (labels are not read back)."""
    return SegmentRow(str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                      str(row[6]), str(row[7]), bytes(row[8]), int(row[9]), superseded_by=str(row[10]),
                      version=int(row[11]))


def outbox_row(r: Sequence[Any]) -> OutboxRow:
    """An :class:`OutboxRow` from the columns :data:`OUTBOX_COLS`."""
    return OutboxRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4]), int(r[5]), int(r[6]))
