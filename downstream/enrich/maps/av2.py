"""Argoverse 2 vector maps (``log_map_archive_*.json``): lane segments and pedestrian crossings.

Each lane segment → a lane (centre line: the mean of its left and right boundaries at equal
arc-length fractions; type: ``VEHICLE``, ``BIKE`` or ``BUS`` lower-cased; ``in_intersection`` from
``is_intersection``); each pedestrian crossing → a crosswalk (``edge1`` then ``edge2`` reversed).
AV2 maps carry no speed limits, stop lines or signals.

The maps are in the log's city frame (metres, the frame of ``city_SE3_egovehicle``), named
``av2:<city>`` from the file name (e.g. ``av2:PIT_city_57819``); the archive does not georeference
it, so the map answers :class:`~.context.LocalTrajectory` queries in that frame only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from downstream.enrich.errors import MapFormatError
from downstream.enrich.maps.features import FloatArray, MapFeatures, MapLane, MapShape
from downstream.enrich.maps.lanelet2 import centre_line

FORMAT = "av2"


def _line(points: Any, where: str) -> FloatArray:
    try:
        xy = np.array([(float(p["x"]), float(p["y"])) for p in points], dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise MapFormatError(f"AV2 map {where}: expected a list of {{x, y, z}} points") from exc
    if len(xy) < 2:
        raise MapFormatError(f"AV2 map {where}: a boundary needs at least 2 points, got {len(xy)}")
    return xy


def parse_av2_map(doc: Any, map_id: str, city: str) -> MapFeatures:
    """Parse a decoded AV2 map archive; raises :class:`MapFormatError` naming the bad element."""
    if not isinstance(doc, dict) or not isinstance(doc.get("lane_segments"), dict):
        raise MapFormatError(f"AV2 map {map_id}: expected an object with 'lane_segments'")
    lanes = []
    for key, seg in sorted(doc["lane_segments"].items()):
        where = f"lane segment {key}"
        if not isinstance(seg, dict):
            raise MapFormatError(f"AV2 map {where}: expected an object")
        left = _line(seg.get("left_lane_boundary"), where + " left_lane_boundary")
        right = _line(seg.get("right_lane_boundary"), where + " right_lane_boundary")
        lanes.append(MapLane(str(seg.get("id", key)), str(seg.get("lane_type", "unknown")).lower(),
                             centre_line(left, right), None, "", bool(seg.get("is_intersection", False))))
    crossings = []
    for key, pc in sorted((doc.get("pedestrian_crossings") or {}).items()):
        if not isinstance(pc, dict):
            raise MapFormatError(f"AV2 map pedestrian crossing {key}: expected an object")
        e1 = _line(pc.get("edge1"), f"pedestrian crossing {key} edge1")
        e2 = _line(pc.get("edge2"), f"pedestrian crossing {key} edge2")
        crossings.append(MapShape(str(pc.get("id", key)), np.vstack([e1, e2[::-1]])))
    if not lanes:
        raise MapFormatError(f"AV2 map {map_id}: no lane segments")
    return MapFeatures(FORMAT, map_id, f"{FORMAT}:{city}", lanes, crossings, projection=None)


def load_av2_map(path: Path, city: str | None = None) -> MapFeatures:
    """Read ``log_map_archive_<log>____<city>.json``; the city is the part after ``____`` unless given."""
    stem = path.stem.removeprefix("log_map_archive_")
    log_id, _, named = stem.partition("____")
    city = city or named
    if not city:
        raise MapFormatError(f"AV2 map {path.name}: the name holds no city (log_map_archive_<log>____<city>.json); "
                             "pass the city")
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise MapFormatError(f"cannot read AV2 map {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise MapFormatError(f"AV2 map {path.name}: not JSON: {exc}") from exc
    return parse_av2_map(doc, log_id, city)
