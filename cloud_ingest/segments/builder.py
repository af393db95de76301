"""Cut canonical Segments out of a checked snapshot (pure: no I/O).

A snapshot window up to :data:`MAX_SEGMENT_NS` long is one segment; a longer one is cut into the
fewest equal pieces of at most 40 s, which are then at least 20 s long. Every message belongs to
exactly one piece (the first piece also takes messages before the window, the last those after
it), except that a video stream of a later piece starts at the last keyframe at or before the
piece's start, so each piece decodes on its own. Segment ids are ``uuid5`` of vehicle id,
snapshot sha256 and piece index: ingesting the same file twice yields the same ids.

A piece with a calibration bundle (and a vehicle-state stream) gets its LiDAR and radar refs
pointed at its calibrated object in ``processed/`` (written after the commit, see
:mod:`cloud_ingest.processing`); their raw refs are kept in ``other_streams``.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_ingest.integrity.checks import VIDEO_ENCODINGS, ChannelScan, GnssTrack, SnapshotScan
from cloud_ingest.processing.calibrate import with_calibrated_refs
from cloud_ingest.processing.keys import calibrated_key
from shared.calibration import CalibrationBundle
from shared.segment import Provenance, Segment, Source, StreamRef

MAX_SEGMENT_NS = 40_000_000_000
MIN_SEGMENT_NS = 20_000_000_000
SEGMENT_NAMESPACE = uuid.UUID("6f1d7c3e-2b8a-5d4f-9e1a-a7d0c5b3e210")
BUILDER = "avdata.cloud_ingest.segment_builder/1"

_LIDAR = frozenset({"lidar_points_v1"})
_RADAR = frozenset({"radar_v1"})
_STATE = frozenset({"vehicle_state_v1"})


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """Facts about the upload the builder needs besides the scan."""

    vehicle_id: str
    sha256: str
    raw_key: str
    built_ns: int


def segment_id(vehicle_id: str, sha256: str, index: int) -> str:
    """The deterministic id of piece ``index`` of the snapshot with hash ``sha256``."""
    return str(uuid.uuid5(SEGMENT_NAMESPACE, f"{vehicle_id}/{sha256.lower()}/{index}"))


def piece_edges(start_ns: int, end_ns: int, max_ns: int = MAX_SEGMENT_NS) -> list[int]:
    """Edges ``[e0, e1, ..., en]`` of the ``n`` equal pieces of ``[start_ns, end_ns]``."""
    duration = end_ns - start_ns
    n = max(1, -(-duration // max_ns))
    return [start_ns + duration * i // n for i in range(n + 1)]


def _stream(ch: ChannelScan, lo_ns: int | None, hi_ns: int | None, object_key: str) -> StreamRef | None:
    t = ch.times_ns
    lo = 0 if lo_ns is None else int(np.searchsorted(t, lo_ns, side="left"))
    hi = t.size if hi_ns is None else int(np.searchsorted(t, hi_ns, side="left"))
    if ch.encoding in VIDEO_ENCODINGS and lo_ns is not None:
        starts = np.flatnonzero(ch.keyframes[: lo + 1] & (t[: lo + 1] <= lo_ns))
        lo = int(starts[-1]) if starts.size else lo
    if hi <= lo:
        return None
    return StreamRef(topic=ch.topic, sensor_id=ch.sensor_id, encoding=ch.encoding, object_key=object_key,
                     count=hi - lo, first_ns=int(t[lo]), last_ns=int(t[hi - 1]))


def gnss_context(lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Map context from GNSS fixes: bounding box ``[min_lat, min_lon, max_lat, max_lon]`` (deg), its
    centre and the fix count; ``{}`` without fixes. Merging contexts merges boxes (see segment_join)."""
    if lat_deg.size == 0:
        return {}
    box = [float(lat_deg.min()), float(lon_deg.min()), float(lat_deg.max()), float(lon_deg.max())]
    return {"gnss_bbox_deg": box, "center_lat_deg": (box[0] + box[2]) / 2,
            "center_lon_deg": (box[1] + box[3]) / 2, "gnss_fixes": int(lat_deg.size)}


def _piece_context(track: GnssTrack, lo_ns: int | None, hi_ns: int | None) -> dict[str, Any]:
    lo = 0 if lo_ns is None else int(np.searchsorted(track.t_ns, lo_ns, side="left"))
    hi = track.t_ns.size if hi_ns is None else int(np.searchsorted(track.t_ns, hi_ns, side="left"))
    return gnss_context(track.latlon_deg[lo:hi, 0], track.latlon_deg[lo:hi, 1])


CalibrationLookup = Callable[[int], CalibrationBundle | None]


def build_segments(scan: SnapshotScan, info: SnapshotInfo,
                   calibration_at: CalibrationLookup | None = None) -> list[Segment]:
    """The segments of one snapshot, in time order (see the module docstring).

    ``calibration_at(start_ns)`` gives the bundle valid at each piece's start (``None``: none)."""
    m = scan.manifest
    edges = piece_edges(m.start_ns, m.end_ns)
    n = len(edges) - 1
    out: list[Segment] = []
    for i in range(n):
        lo_ns = None if i == 0 else edges[i]
        hi_ns = None if i == n - 1 else edges[i + 1]
        refs = [r for ch in sorted(scan.channels.values(), key=lambda c: c.topic)
                if (r := _stream(ch, lo_ns, hi_ns, info.raw_key)) is not None]
        triggers = tuple(t for t in m.triggers if bisect.bisect_right(edges[1:-1], t.t_ns) == i)
        sid = segment_id(info.vehicle_id, info.sha256, i)
        seg = Segment(
            segment_id=sid, vehicle_id=info.vehicle_id,
            start_ns=edges[i], end_ns=edges[i + 1],
            camera_frames=tuple(r for r in refs if r.encoding in VIDEO_ENCODINGS),
            lidar_sweeps=tuple(r for r in refs if r.encoding in _LIDAR),
            radar_returns=tuple(r for r in refs if r.encoding in _RADAR),
            vehicle_states=tuple(r for r in refs if r.encoding in _STATE),
            other_streams=tuple(r for r in refs
                                if r.encoding not in VIDEO_ENCODINGS | _LIDAR | _RADAR | _STATE),
            map_context=_piece_context(scan.gnss, lo_ns, hi_ns),
            calibration=calibration_at(edges[i]) if calibration_at is not None else None, triggers=triggers,
            visual_embedding=None, bev_embedding=None, language_description="",
            tags=tuple(sorted({t.kind.value for t in triggers})), source=Source.REAL,
            provenance=Provenance(
                snapshot_ids=(m.snapshot_id,), snapshot_sha256=(info.sha256,),
                software_version=m.software_version, model_version=m.model_version,
                builder=BUILDER, built_ns=info.built_ns),
        )
        out.append(with_calibrated_refs(seg, calibrated_key(sid, edges[i])))
    return out
