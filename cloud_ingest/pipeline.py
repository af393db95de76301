"""What happens when the last byte of an upload arrives: check, cut, calibrate, join, store,
record, announce.

:func:`ingest_upload` is blocking (the daemon runs it in a worker thread) and idempotent: segment
ids are deterministic, the raw object is write-once and accepted again only with the same hash,
and segment + outbox rows are inserted in one transaction that skips segments already present
(and plans a join only when a segment was new). So a retry after a crash at any step, or two
daemons finishing the same content, store it once.

Crash windows: the upload file stays in ``uploads/`` until the commit (the raw object is a second
link to it, so nothing is copied), so an ingest cut short at any step can simply be run again;
processed outputs follow the commit and each segment row records when they were complete
(``processed_ns``), so outputs lost to a crash are rewritten by :func:`processed.complete_segments`
(run again by the sweeper's repair pass).

Calibrated streams (LiDAR motion compensation, radar Doppler correction) cost far more than the
rest (seconds for a 40 s segment of real sweeps), so when :class:`IngestDeps` has a ``background``
runner they are written there, after the commit and off the request that completed the upload;
their segments are marked processed only once they exist, so the repair pass redoes any that a
crash or a failure cut short. Without a runner they are written before this function returns.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest.calibration.registry import CalibrationStore
from cloud_ingest.errors import CalibrationNotFound, IngestError, IntegrityFailure, ObjectExists
from cloud_ingest.integrity.checks import SnapshotScan, check_scan, scan_snapshot
from cloud_ingest.processing import complete as processed
from cloud_ingest.processing.complete import utc_date
from cloud_ingest.queue.announce import announce
from cloud_ingest.segments.builder import SnapshotInfo, build_segments, segment_id
from cloud_ingest.segments.join import plan_join
from cloud_ingest.storage.metadata.protocol import (
    SEGMENTS_TOPIC,
    JoinPlan,
    MetadataDB,
    OutboxRow,
    QuarantineRow,
    SegmentRow,
    UploadRecord,
)
from cloud_ingest.storage.objects.protocol import ObjectStore
from shared.calibration import CalibrationBundle
from shared.errors import ContractError
from shared.segment import Segment
from shared.snapshot import fsync_dir

log = logging.getLogger(__name__)
__all__ = ["IngestDeps", "IngestResult", "ingest_upload", "raw_key", "utc_date"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """``segment_ids``: every segment of the snapshot; ``new_segment_ids``: those this call created
    (joined ones included); ``joined``: ``(joined id, superseded ids)`` when a join happened."""

    segment_ids: tuple[str, ...]
    new_segment_ids: tuple[str, ...]
    raw_key: str
    joined: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class IngestDeps:
    """What the pipeline touches. ``no_calibration(reason)`` is called per segment stored without a
    calibration bundle (a metrics hook): ``vehicle_has_none`` or ``none_valid_at_start``.
    ``background(job)`` runs a job later on a worker (e.g. an executor's ``submit``): the calibrated
    streams go there; ``None`` writes them inline. ``bad_sensor_data(reason)`` counts malformed
    messages met while calibrating (``lidar_malformed``, ``radar_malformed``,
    ``vehicle_state_malformed``, ``no_ego_motion``)."""

    db: MetadataDB
    store: ObjectStore
    quarantine_dir: Path
    calibrations: CalibrationStore | None = None
    join_gap_ns: int = 2_000_000_000
    no_calibration: Callable[[str], None] = lambda reason: None
    background: Callable[[Callable[[], None]], object] | None = None
    bad_sensor_data: Callable[[str], None] = lambda reason: None


def raw_key(vehicle_id: str, sha256: str, start_ns: int) -> str:
    """Where a snapshot's bytes live: under its first segment's folder, named by the server."""
    return f"raw/{utc_date(start_ns)}/{vehicle_id}/{segment_id(vehicle_id, sha256, 0)}/snapshot.mcap"


def labels(seg: Segment) -> tuple[str, ...]:
    """Query labels of a segment: ``trigger:<kind>`` per trigger kind and ``tag:<tag>`` per tag."""
    return tuple(sorted({f"trigger:{t.kind.value}" for t in seg.triggers} | {f"tag:{t}" for t in seg.tags}))


def _link(src: Path, dest: Path) -> None:
    """Give ``src``'s inode the name ``dest`` as well (replacing it), durably; no bytes are copied."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.link(src, tmp)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def quarantine_file(path: Path, upload: UploadRecord, failure: IntegrityFailure, *, db: MetadataDB,
                    quarantine_dir: Path) -> QuarantineRow:
    """Keep a failed snapshot for inspection and record why; the caller answers 422.

    The file gains its quarantine name before the row is written and loses its upload name after,
    so a crash in between leaves an upload that is simply checked (and quarantined) again."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    dest = quarantine_dir / f"{upload.upload_id}.mcap"
    _link(path, dest)
    row = QuarantineRow(upload.upload_id, upload.vehicle_id, failure.reason, failure.detail,
                        dest.name, time.time_ns())
    db.quarantine(row)
    path.unlink(missing_ok=True)
    return row


def _store_raw(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    """Store the upload file as the raw object; the upload file itself stays until the commit."""
    if not store.exists(key):
        staging = path.with_suffix(".ingest")  # a second name the store may consume
        _link(path, staging)
        try:
            store.put_file(key, staging, move=True)
            return
        except ObjectExists:
            pass  # another daemon stored the same content a moment ago: check it below
        finally:
            staging.unlink(missing_ok=True)
    if store.sha256(key) != sha256:
        raise IngestError(f"raw object {key} exists with different content", reason="raw_conflict")


def _calibration_lookup(deps: IngestDeps, vehicle_id: str) -> Callable[[int], CalibrationBundle | None]:
    def at(t_ns: int) -> CalibrationBundle | None:
        if deps.calibrations is None:
            deps.no_calibration("vehicle_has_none")
            return None
        try:
            return deps.calibrations.valid_at(vehicle_id, t_ns)
        except CalibrationNotFound:
            deps.no_calibration("none_valid_at_start" if deps.calibrations.versions(vehicle_id)
                                else "vehicle_has_none")
            return None
    return at


def _row(seg: Segment, record: bytes, snapshot_id: str, upload: UploadRecord, key: str, now: int) -> SegmentRow:
    return SegmentRow(seg.segment_id, seg.vehicle_id, seg.start_ns, seg.end_ns, snapshot_id, upload.sha256,
                      upload.upload_id, key, record, now, labels=labels(seg))


def _complete(deps: IngestDeps, new: list[str]) -> None:
    """Processed outputs of the new segments: inline, or the calibrated part on ``deps.background``."""
    done = processed.complete_segments(deps.db, deps.store, new, calibrated=deps.background is None,
                                       on_bad=deps.bad_sensor_data)
    rest = [sid for sid in new if sid not in done]
    if deps.background is None or not rest:
        return

    def job() -> None:
        try:
            processed.complete_segments(deps.db, deps.store, rest, on_bad=deps.bad_sensor_data)
        except Exception:  # a worker has no caller to tell; the repair pass finishes these
            log.exception("background processed outputs failed", extra={"segment_ids": rest})

    deps.background(job)


def ingest_upload(path: Path, upload: UploadRecord, deps: IngestDeps,
                  scanned: Callable[[], SnapshotScan] | None = None) -> IngestResult:
    """Ingest the complete upload file at ``path`` (its sha256 already checked).

    ``scanned`` gives the integrity scan when it was made while the bytes arrived (it raises
    :class:`IntegrityFailure` for a bad file); without it the file is scanned here. Raises
    :class:`IntegrityFailure` after quarantining the file and recording the reason.
    """
    try:
        scan = scanned() if scanned is not None else scan_snapshot(path)
        check_scan(scan, vehicle_id=upload.vehicle_id)
    except IntegrityFailure as failure:
        quarantine_file(path, upload, failure, db=deps.db, quarantine_dir=deps.quarantine_dir)
        raise
    now = time.time_ns()
    key = raw_key(upload.vehicle_id, upload.sha256, scan.manifest.start_ns)
    segments = build_segments(scan, SnapshotInfo(upload.vehicle_id, upload.sha256, key, now),
                              _calibration_lookup(deps, upload.vehicle_id))
    _store_raw(deps.store, key, path, upload.sha256)
    built: dict[str, tuple[Segment, bytes, tuple[str, ...]]] = {s.segment_id: (s, s.encode(), ()) for s in segments}
    rows = [_row(s, built[s.segment_id][1], scan.manifest.snapshot_id, upload, key, now) for s in segments]
    outbox = [OutboxRow(0, SEGMENTS_TOPIC, s.vehicle_id, s.segment_id, announce(s, built[s.segment_id][1]).encode(),
                        now) for s in segments]

    def planner(neighbours: list[SegmentRow]) -> JoinPlan:
        if len(segments) != 1:
            return JoinPlan()
        decoded = []
        for r in neighbours:
            try:
                decoded.append(Segment.decode(r.record))
            except ContractError:
                log.warning("undecodable segment record skipped for joining", extra={"segment_id": r.segment_id})
        plan = plan_join(segments[0], decoded, deps.join_gap_ns, now)
        if plan is None:
            return JoinPlan()
        joined, members = plan
        record = joined.encode()
        built[joined.segment_id] = (joined, record, members)
        return JoinPlan((_row(joined, record, scan.manifest.snapshot_id, upload, key, now),),
                        (OutboxRow(0, SEGMENTS_TOPIC, joined.vehicle_id, joined.segment_id,
                                   announce(joined, record, members).encode(), now),),
                        {m: joined.segment_id for m in members})

    new = deps.db.commit_ingest(upload.upload_id, rows, outbox, now, planner, deps.join_gap_ns)
    path.unlink(missing_ok=True)
    _complete(deps, new)
    joined: tuple[str, tuple[str, ...]] | None = next(((sid, built[sid][2]) for sid in new if built[sid][2]),
                                                      None)
    log.info("ingested snapshot", extra={"upload_id": upload.upload_id, "vehicle_id": upload.vehicle_id,
                                         "segments": [s.segment_id for s in segments], "new": len(new),
                                         "joined": joined[0] if joined else None})
    return IngestResult(tuple(s.segment_id for s in segments), tuple(new), key, joined)
