"""Append-only processed outputs of each new segment, under ``processed/{date}/{segment_id}/``.

- ``segment.msgpack``: the encoded :class:`shared.segment.Segment`, byte for byte as in the DB;
- ``index.json``: a human- and tool-readable summary (window, streams with their raw object
  keys, counts and time ranges, triggers, map context, the segments it supersedes);
- ``superseded.json``: added later to a segment's folder when a joined segment replaces it;
- ``calibrated.mcap`` + ``calibrated.json``: for a segment with a calibration bundle, its LiDAR
  sweeps motion-compensated into the vehicle frame and its radar Doppler corrected for ego motion
  (:mod:`cloud_ingest.processing`). The Segment's ``lidar_sweeps``/``radar_returns`` point at it
  from the start (the builder names the key); the raw refs stay in ``other_streams``.

Keys are only ever added (the store refuses to replace them); writing an existing key again is
accepted as done, so a retried ingest converges. ``{date}`` is the UTC date of the segment start.

:func:`complete_segments` writes all of it for committed segments from their DB rows and then
records ``processed_ns`` (only once every output exists); the ingest calls it right after its
commit (the calibrated streams possibly deferred to a background worker, see
:mod:`cloud_ingest.pipeline`), and the sweeper's repair pass calls it for rows still unmarked (a
daemon died in between), so outputs are never lost for good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from cloud_ingest.errors import IngestError, ObjectExists
from cloud_ingest.processing.keys import folder, utc_date
from cloud_ingest.processing.outputs import needs_calibrated, write_calibrated
from cloud_ingest.storage.metadata.protocol import MetadataDB
from cloud_ingest.storage.objects.protocol import ObjectStore
from shared.errors import ContractError
from shared.segment import Segment

__all__ = ["complete_segments", "folder", "index_doc", "mark_superseded", "utc_date", "write_segment"]
log = logging.getLogger(__name__)


def index_doc(seg: Segment, supersedes: tuple[str, ...]) -> dict[str, Any]:
    """The ``index.json`` document of ``seg``."""
    return {
        "segment_id": seg.segment_id, "vehicle_id": seg.vehicle_id, "start_ns": seg.start_ns,
        "end_ns": seg.end_ns, "streams": [r.to_body() for r in seg.streams],
        "triggers": [{"kind": t.kind.value, "t_ns": t.t_ns} for t in seg.triggers], "tags": list(seg.tags),
        "map_context": seg.map_context,
        "calibration_version": seg.calibration.version if seg.calibration is not None else None,
        "snapshot_sha256": list(seg.provenance.snapshot_sha256),
        "parent_segment_ids": list(seg.provenance.parent_segment_ids), "supersedes": list(supersedes)}


def _put_once(store: ObjectStore, key: str, data: bytes) -> None:
    with contextlib.suppress(ObjectExists):  # an earlier attempt or another daemon wrote it: already there
        store.put_bytes(key, data)


def write_segment(store: ObjectStore, seg: Segment, record: bytes, supersedes: tuple[str, ...] = ()) -> None:
    """Write ``segment.msgpack`` and ``index.json`` of a newly stored segment."""
    base = folder(seg.segment_id, seg.start_ns)
    _put_once(store, f"{base}/segment.msgpack", record)
    _put_once(store, f"{base}/index.json",
              json.dumps(index_doc(seg, supersedes), indent=1, sort_keys=True).encode())


def mark_superseded(store: ObjectStore, segment_id: str, start_ns: int, by: str) -> None:
    """Add ``superseded.json`` to a replaced segment's folder."""
    _put_once(store, f"{folder(segment_id, start_ns)}/superseded.json",
              json.dumps({"segment_id": segment_id, "superseded_by": by}).encode())


def _calibrated(store: ObjectStore, seg: Segment, on_bad: Callable[[str], None]) -> bool:
    try:
        write_calibrated(store, seg, on_bad)
        return True
    except (IngestError, ContractError, OSError) as exc:
        log.error("calibrated streams not written; the repair pass retries",
                  extra={"segment_id": seg.segment_id, "error": str(exc)})
        return False


def complete_segments(db: MetadataDB, store: ObjectStore, segment_ids: Iterable[str], *,
                      calibrated: bool = True,
                      on_bad: Callable[[str], None] = lambda reason: None) -> list[str]:
    """Write the processed outputs of committed segments (idempotent) and mark them processed.

    A joined segment's ``index.json`` lists the segments it supersedes (read back from the DB, in
    time order) and each of those gets its ``superseded.json``. With ``calibrated`` false the
    calibrated streams are left for a later call, and a segment that needs them stays unmarked;
    ``on_bad(reason)`` counts malformed sensor messages met while calibrating. Returns the ids
    completed; a row whose record does not decode, or whose calibrated streams fail, is logged and
    left unmarked.
    """
    done: list[str] = []
    for sid in segment_ids:
        row = db.get_segment(sid)
        if row is None:
            continue
        try:
            seg = Segment.decode(row.record)
        except ContractError:
            log.error("stored segment record does not decode; processed outputs not written",
                      extra={"segment_id": sid})
            continue
        members = db.superseded_segments(sid)
        write_segment(store, seg, row.record, tuple(m.segment_id for m in members))
        for m in members:
            mark_superseded(store, m.segment_id, m.start_ns, sid)
        if needs_calibrated(seg) and not (calibrated and _calibrated(store, seg, on_bad)):
            continue
        done.append(sid)
    if done:
        db.mark_processed(done, time.time_ns())
    return done
