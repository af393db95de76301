"""What happens when the last byte of an upload arrives: check, cut, store, record, announce.

:func:`ingest_upload` is blocking (the daemon runs it in a worker thread) and idempotent: segment
ids are deterministic, the raw object is write-once and accepted again only with the same hash,
and segment + outbox rows are inserted in one transaction that skips segments already present.
So a retry after a crash at any step, or two daemons finishing the same content, store it once.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest.db import SEGMENTS_TOPIC, MetadataDB, OutboxRow, QuarantineRow, SegmentRow, UploadRecord
from cloud_ingest.errors import IngestError, IntegrityFailure, ObjectExists
from cloud_ingest.integrity import check_scan, scan_snapshot
from cloud_ingest.object_store import ObjectStore
from cloud_ingest.segment_builder import SnapshotInfo, build_segments, segment_id
from shared.snapshot import fsync_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """``segment_ids``: every segment of the snapshot; ``new_segment_ids``: those this call created."""

    segment_ids: tuple[str, ...]
    new_segment_ids: tuple[str, ...]
    raw_key: str


def utc_date(t_ns: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a nanosecond timestamp: the date folder of raw/ and processed/."""
    return time.strftime("%Y-%m-%d", time.gmtime(t_ns // 1_000_000_000))


def raw_key(vehicle_id: str, sha256: str, start_ns: int) -> str:
    """Where a snapshot's bytes live: under its first segment's folder, named by the server."""
    return f"raw/{utc_date(start_ns)}/{vehicle_id}/{segment_id(vehicle_id, sha256, 0)}/snapshot.mcap"


def quarantine_file(path: Path, upload: UploadRecord, failure: IntegrityFailure, *, db: MetadataDB,
                    quarantine_dir: Path) -> QuarantineRow:
    """Keep a failed snapshot for inspection and record why; the caller answers 422."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    dest = quarantine_dir / f"{upload.upload_id}.mcap"
    os.replace(path, dest)
    fsync_dir(quarantine_dir)
    row = QuarantineRow(upload.upload_id, upload.vehicle_id, failure.reason, failure.detail,
                        dest.name, time.time_ns())
    db.quarantine(row)
    return row


def _store_raw(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    if not store.exists(key):
        try:
            store.put_file(key, path, move=True)
            return
        except ObjectExists:
            pass  # another daemon stored the same content a moment ago: check it below
    if store.sha256(key) != sha256:
        raise IngestError(f"raw object {key} exists with different content", reason="raw_conflict")
    path.unlink(missing_ok=True)


def ingest_upload(path: Path, upload: UploadRecord, *, db: MetadataDB, store: ObjectStore,
                  quarantine_dir: Path) -> IngestResult:
    """Ingest the complete upload file at ``path`` (its sha256 already checked).

    Raises :class:`IntegrityFailure` after quarantining the file and recording the reason.
    """
    try:
        scan = scan_snapshot(path)
        check_scan(scan, vehicle_id=upload.vehicle_id)
    except IntegrityFailure as failure:
        quarantine_file(path, upload, failure, db=db, quarantine_dir=quarantine_dir)
        raise
    now = time.time_ns()
    key = raw_key(upload.vehicle_id, upload.sha256, scan.manifest.start_ns)
    segments = build_segments(scan, SnapshotInfo(upload.vehicle_id, upload.sha256, key, now))
    _store_raw(store, key, path, upload.sha256)
    rows, outbox = [], []
    for seg in segments:
        record = seg.encode()
        rows.append(SegmentRow(seg.segment_id, seg.vehicle_id, seg.start_ns, seg.end_ns,
                               scan.manifest.snapshot_id, upload.sha256, upload.upload_id, key, record, now))
        outbox.append(OutboxRow(0, SEGMENTS_TOPIC, seg.vehicle_id, seg.segment_id, record, now))
    new = db.commit_ingest(upload.upload_id, rows, outbox, now)
    log.info("ingested snapshot", extra={"upload_id": upload.upload_id, "vehicle_id": upload.vehicle_id,
                                         "segments": [s.segment_id for s in segments], "new": len(new)})
    return IngestResult(tuple(s.segment_id for s in segments), tuple(new), key)
