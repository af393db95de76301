"""Join short adjacent segments of one vehicle into canonical ones (pure: no I/O).

Vehicles cut a snapshot per trigger, so a vehicle often uploads several short snapshots
back-to-back. The rule, applied when a snapshot's segment is stored:

- Only a *short* segment (under :data:`MIN_SEGMENT_NS`, 20 s) joins, and only with *live* short
  neighbours of the same vehicle (not already superseded) whose window is at most ``gap_ns``
  (default 2 s) before its start or after its end; overlapping windows never join.
- Candidates, in this order: previous + new + next, previous + new, new + next; the first whose
  span stays within :data:`MAX_SEGMENT_NS` (40 s) wins. A joined segment may join again later.
- The joined segment's id is ``uuid5`` of its sorted *leaf* ids (the per-snapshot segments it is
  made of), so A, B, C end as the same segment ``ABC`` whatever order they arrive in. The
  members are kept (immutable, still readable) and marked ``superseded_by`` the joined one.
- A short snapshot with no neighbour (yet) stays its own segment until one arrives.

Re-ingesting a snapshot inserts nothing (its leaf ids exist), so no join is planned twice.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from cloud_ingest.segments.builder import BUILDER, MAX_SEGMENT_NS, MIN_SEGMENT_NS, gnss_context
from shared.segment import Provenance, Segment, StreamRef

JOIN_NAMESPACE = uuid.UUID("0b6a4c1e-7d2f-5e3a-8c9b-1f2e3d4c5b6a")


def leaf_ids(seg: Segment) -> tuple[str, ...]:
    """The per-snapshot segments ``seg`` is made of (itself when it is not a join)."""
    return seg.provenance.parent_segment_ids or (seg.segment_id,)


def joined_id(leaves: tuple[str, ...]) -> str:
    """The id of the join of ``leaves`` (independent of their order)."""
    return str(uuid.uuid5(JOIN_NAMESPACE, "join/" + ",".join(sorted(leaves))))


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def merge_context(contexts: list[dict[str, Any]]) -> dict[str, Any]:
    """The union of GNSS map contexts (bounding boxes merged, fix counts added)."""
    boxes = [c["gnss_bbox_deg"] for c in contexts if "gnss_bbox_deg" in c]
    if not boxes:
        return {}
    lat = np.asarray([b[0] for b in boxes] + [b[2] for b in boxes], np.float64)
    lon = np.asarray([b[1] for b in boxes] + [b[3] for b in boxes], np.float64)
    out = gnss_context(lat, lon)
    out["gnss_fixes"] = sum(int(c.get("gnss_fixes", 0)) for c in contexts)
    return out


def join_segments(members: list[Segment], built_ns: int) -> Segment:
    """One segment covering ``members`` (same vehicle, time-ordered); calibration of the first."""
    ms = sorted(members, key=lambda m: (m.start_ns, m.segment_id))
    leaves = _unique([leaf for m in ms for leaf in leaf_ids(m)])

    def refs(group: str) -> tuple[StreamRef, ...]:
        return tuple(sorted((r for m in ms for r in getattr(m, group)), key=lambda r: (r.topic, r.first_ns)))

    first = ms[0]
    return Segment(
        segment_id=joined_id(leaves), vehicle_id=first.vehicle_id, start_ns=first.start_ns,
        end_ns=max(m.end_ns for m in ms), camera_frames=refs("camera_frames"), lidar_sweeps=refs("lidar_sweeps"),
        radar_returns=refs("radar_returns"), vehicle_states=refs("vehicle_states"),
        other_streams=refs("other_streams"), map_context=merge_context([m.map_context for m in ms]),
        calibration=first.calibration,
        triggers=tuple(sorted((t for m in ms for t in m.triggers), key=lambda t: (t.t_ns, t.kind.value))),
        visual_embedding=None, bev_embedding=None, language_description="",
        tags=tuple(sorted({t for m in ms for t in m.tags})), source=first.source,
        provenance=Provenance(
            snapshot_ids=_unique([s for m in ms for s in m.provenance.snapshot_ids]),
            snapshot_sha256=_unique([s for m in ms for s in m.provenance.snapshot_sha256]),
            software_version=first.provenance.software_version, model_version=first.provenance.model_version,
            builder=BUILDER, built_ns=built_ns, parent_segment_ids=leaves))


def plan_join(new: Segment, neighbours: list[Segment], gap_ns: int,
              built_ns: int) -> tuple[Segment, tuple[str, ...]] | None:
    """The joined segment and the ids it supersedes, or ``None`` (see the module docstring)."""
    if new.end_ns - new.start_ns >= MIN_SEGMENT_NS:
        return None
    short = [n for n in neighbours if n.vehicle_id == new.vehicle_id and n.segment_id != new.segment_id
             and n.end_ns - n.start_ns < MIN_SEGMENT_NS]
    before = [n for n in short if 0 <= new.start_ns - n.end_ns <= gap_ns]
    after = [n for n in short if 0 <= n.start_ns - new.end_ns <= gap_ns]
    prev = max(before, key=lambda n: (n.end_ns, n.segment_id), default=None)
    nxt = min(after, key=lambda n: (n.start_ns, n.segment_id), default=None)
    for group in ([prev, new, nxt], [prev, new], [new, nxt]):
        members = [m for m in group if m is not None]
        if len(members) != len(group):
            continue
        if members[-1].end_ns - members[0].start_ns <= MAX_SEGMENT_NS:
            return join_segments(members, built_ns), tuple(m.segment_id for m in members)
    return None
