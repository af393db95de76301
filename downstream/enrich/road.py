"""Road type and road geometry: from the map context where there is one, else from the speed profile.

``road_type`` is ``highway``, ``urban`` or ``rural``. From a map (source ``map``), the first rule
that applies wins:

1. a lane the vehicle drives on (a vehicle lane within :data:`ON_ROUTE_M` of the trajectory; all
   vehicle lanes in the radius when none is that close) carries a highway label (``highway``,
   ``interstate``, ``motorway``, ``freeway``, ``accessRamp``, ``exitRamp``) → highway, 0.9;
2. the map as a whole is classed highway or interstate (CommonRoad scenario tags) → highway, 0.8:
   it outranks per-lane ``urban``, which converted NGSIM freeways carry;
3. the on-route lanes' labels say ``urban`` or rural (``nonurban``, ``country``, ``rural``) → the
   majority, 0.8; then a map-wide ``urban``/``rural`` class → that, 0.7;
4. a speed limit the map states (not a country default) on an on-route lane: ≥ 80 km/h →
   highway, 0.7; ≤ 50 km/h → urban, 0.6;
5. crosswalks or traffic lights within the radius → urban, 0.6.

Lane types are ``+``-joined labels as the readers write them (``road+urban``, ``urban``).

From the speed profile (source ``speed_profile``), over at least :data:`MIN_PROFILE_S` of ego
states: a median speed ≥ 22 m/s (79 km/h) → highway, 0.6; an 85th percentile ≤ 14 m/s (50 km/h)
→ urban, 0.4, below the default floor of ``Segment.tags`` because congested highways drive just as
slowly (the real comma2k19 drive on I-280 runs 8-20 m/s); anything between → no tag.

``road_geometry`` uses the ODD taxonomy's :class:`~simulator_harness.scenario.spec.RoadType`
values: ``intersection`` when an on-route lane lies in an intersection (0.8) or a traffic light or
stop line lies within :data:`JUNCTION_M` of the trajectory (0.7); ``straight`` when neither holds
and the trajectory turns by less than 20° (0.6). Only a map gives road geometry.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from downstream.enrich.errors import EnrichInputError
from downstream.enrich.maps.context import Lane, MapContext
from downstream.enrich.records import EgoStates
from downstream.enrich.tags import Tag, TagSource
from simulator_harness.scenario.spec import RoadType

ON_ROUTE_M = 3.0
JUNCTION_M = 20.0
MIN_PROFILE_S = 10.0
HIGHWAY_MEDIAN_MPS = 22.0
URBAN_P85_MPS = 14.0
STRAIGHT_TURN_DEG = 20.0
HIGHWAY_LABELS = frozenset({"highway", "interstate", "motorway", "freeway", "accessramp", "exitramp"})
URBAN_LABELS = frozenset({"urban", "play_street"})
RURAL_LABELS = frozenset({"nonurban", "country", "rural"})
NON_VEHICLE_LABELS = frozenset({"bicycle_lane", "bicyclelane", "bike", "sidewalk", "crosswalk", "walkway"})


def _labels(lane: Lane) -> set[str]:
    return {part.lower() for part in lane.lane_type.split("+")}


def _lane_class(lane: Lane) -> str | None:
    labels = _labels(lane)
    if labels & HIGHWAY_LABELS:
        return "highway"
    if labels & RURAL_LABELS:
        return "rural"
    if labels & URBAN_LABELS:
        return "urban"
    return None


def on_route_lanes(ctx: MapContext) -> list[Lane]:
    """The vehicle lanes the trajectory drives on (see the module docstring)."""
    vehicle = [la for la in ctx.lanes if not _labels(la) & NON_VEHICLE_LABELS]
    close = [la for la in vehicle if la.distance_m <= ON_ROUTE_M]
    return close or vehicle


def road_type_from_map(ctx: MapContext) -> Tag | None:
    """The map's ``road_type`` tag (rules 1-5 of the module docstring), or None."""
    if not ctx.covered:
        return None
    lanes = on_route_lanes(ctx)
    classes = [c for c in (_lane_class(la) for la in lanes) if c is not None]
    wide = {c.lower() for c in ctx.road_classes}

    def tag(value: str, confidence: float) -> Tag:
        return Tag("road_type", value, TagSource.MAP, confidence)

    if "highway" in classes:
        return tag("highway", 0.9)
    if wide & {"highway", "interstate"}:
        return tag("highway", 0.8)
    if classes:
        return tag(Counter(sorted(classes)).most_common(1)[0][0], 0.8)
    for value in ("urban", "rural"):
        if value in wide:
            return tag(value, 0.7)
    limits = [la.speed_limit_mps for la in lanes if la.speed_limit_mps is not None and la.speed_limit_source == "map"]
    if limits and max(limits) >= 80 / 3.6:
        return tag("highway", 0.7)
    if limits and max(limits) <= 50 / 3.6 + 1e-6:
        return tag("urban", 0.6)
    if ctx.crosswalks or any(s.kind.startswith("traffic_light") for s in ctx.signals):
        return tag("urban", 0.6)
    return None


def road_type_from_speed(ego: EgoStates) -> Tag | None:
    """The speed profile's ``road_type`` tag (see the module docstring), or None."""
    if ego.t_ns.size < 2 or (int(ego.t_ns[-1]) - int(ego.t_ns[0])) / 1e9 < MIN_PROFILE_S:
        return None
    speed = np.asarray(ego.speed_mps, dtype=np.float64)
    if np.median(speed) >= HIGHWAY_MEDIAN_MPS:
        return Tag("road_type", "highway", TagSource.SPEED_PROFILE, 0.6)
    if np.percentile(speed, 85) <= URBAN_P85_MPS:
        return Tag("road_type", "urban", TagSource.SPEED_PROFILE, 0.4)
    return None


def _turn_deg(ctx: MapContext) -> float:
    xy = np.asarray(ctx.trajectory_m, dtype=np.float64).reshape(-1, 2)
    steps = np.diff(xy, axis=0)
    steps = steps[np.hypot(steps[:, 0], steps[:, 1]) > 0.5]  # GNSS jitter while standing still
    if len(steps) < 2:
        return 0.0
    heading = np.unwrap(np.arctan2(steps[:, 1], steps[:, 0]))
    return math.degrees(float(heading.max() - heading.min()))


def road_geometry(ctx: MapContext) -> Tag | None:
    """The ``road_geometry`` tag (taxonomy :class:`RoadType` values) from a covering map, or None."""
    if not ctx.covered:
        return None
    if any(la.in_intersection for la in on_route_lanes(ctx) if la.distance_m <= ON_ROUTE_M):
        return Tag("road_geometry", RoadType.INTERSECTION.value, TagSource.MAP, 0.8)
    junction = [s for s in ctx.signals if s.kind.startswith("traffic_light") and s.distance_m <= JUNCTION_M]
    if junction or any(s.distance_m <= JUNCTION_M for s in ctx.stop_lines):
        return Tag("road_geometry", RoadType.INTERSECTION.value, TagSource.MAP, 0.7)
    if _turn_deg(ctx) < STRAIGHT_TURN_DEG:
        return Tag("road_geometry", RoadType.STRAIGHT.value, TagSource.MAP, 0.6)
    return None


def road_tags(ctx: MapContext | None, ego: EgoStates | None) -> tuple[Tag, ...]:
    """``road_type`` (map first, else speed profile) and ``road_geometry`` (map only) tags."""
    if ctx is None and ego is None:
        raise EnrichInputError("road tags need a map context or ego states")
    out: list[Tag] = []
    kind = road_type_from_map(ctx) if ctx is not None else None
    if kind is None and ego is not None:
        kind = road_type_from_speed(ego)
    if kind is not None:
        out.append(kind)
    geometry = road_geometry(ctx) if ctx is not None else None
    if geometry is not None:
        out.append(geometry)
    return tuple(out)
