"""CommonRoad lanelet networks (XML, 2018b/2020a) as map context.

What becomes what: each ``<lanelet>`` → a lane (centre line: the mean of its left and right
bounds, which CommonRoad stores point for point; type: its ``<laneletType>`` values joined by
``+``, ``unknown`` when absent); its ``<stopLine>`` → a stop line; a speed-limit ``<trafficSign>``
it refers to (German ``274``, US ``R2-1``; the value is in m/s as CommonRoad 2020a stores it) →
its speed limit; ``<trafficLight>`` and ``<trafficSign>`` elements with a position → signals;
the lanelets an ``<intersection>`` leads into (its incomings' successors) → ``in_intersection``.
CommonRoad has no crosswalk element, so crosswalks stay empty. ``<scenarioTags>`` that name a road
class (``interstate``, ``highway``, ``urban``, ``rural``) become the map's road classes.

The seed reader :mod:`simulator_harness.seeds.commonroad` parses the same files for simulation: it
needs the trajectories (and refuses obstacle forms it cannot simulate) and drops the types, signs
and lights this reader keeps, hence a reader of its own.

Georeference: CommonRoad 2020a files give a ``<location>`` point (``gpsLatitude``/``gpsLongitude``),
not a projection of the lanelet frame. A WGS-84 query is answered as if the frame's origin lay at
that point, and the context says ``georeference: "approximate"``; a local query in the map's frame
(``commonroad:<benchmark id>``) is exact. A file without a location point answers local queries only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from downstream.enrich.errors import MapFormatError
from downstream.enrich.maps.features import FloatArray, MapFeatures, MapLane, MapShape, MapSignal
from downstream.enrich.maps.geo import LocalProjection

FORMAT = "commonroad"
SPEED_LIMIT_SIGNS = frozenset({"274", "R2-1"})
ROAD_CLASSES = ("interstate", "highway", "urban", "rural")
_UNKNOWN_GPS = 999.0  # CommonRoad's "no location" value


def _points(el: ET.Element | None, where: str) -> FloatArray:
    if el is None:
        return np.zeros((0, 2))
    try:
        pts = [(float(p.findtext("x", "")), float(p.findtext("y", ""))) for p in el.iter("point")]
    except ValueError as exc:
        raise MapFormatError(f"CommonRoad {where}: a point is not two numbers x, y") from exc
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def _location(root: ET.Element) -> LocalProjection | None:
    loc = root.find("location")
    if loc is None:
        return None
    try:
        lat, lon = float(loc.findtext("gpsLatitude", "")), float(loc.findtext("gpsLongitude", ""))
    except ValueError:
        return None
    if abs(lat) >= 89.0 or abs(lon) > 180.0 or _UNKNOWN_GPS in (lat, lon):
        return None
    return LocalProjection(lat, lon)


def _signs(root: ET.Element) -> tuple[dict[str, float], list[MapSignal]]:
    """Speed limit (m/s) per speed-limit sign id, and every positioned light and sign."""
    limits: dict[str, float] = {}
    signals = []
    for sign in root.iter("trafficSign"):
        sid = sign.get("id", "")
        ids = []
        for element in sign.iter("trafficSignElement"):
            code = element.findtext("trafficSignID", "").strip()
            ids.append(code)
            if code in SPEED_LIMIT_SIGNS:
                try:
                    limits[sid] = float(element.findtext("additionalValue", ""))
                except ValueError as exc:
                    raise MapFormatError(f"CommonRoad trafficSign {sid}: speed limit value is not a number") from exc
        pos = _points(sign.find("position"), f"trafficSign {sid}")
        if len(pos):
            signals.append(MapSignal(sid, "traffic_sign:" + "+".join(ids or ["unknown"]), pos[0]))
    for light in root.iter("trafficLight"):
        pos = _points(light.find("position"), f"trafficLight {light.get('id')}")
        if len(pos):
            signals.append(MapSignal(light.get("id", ""), "traffic_light", pos[0]))
    return limits, signals


def parse_commonroad_map(xml_text: str | bytes, map_id: str = "") -> MapFeatures:
    """Parse a CommonRoad document's road network; raises :class:`MapFormatError` naming the element."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise MapFormatError(f"CommonRoad map: not well-formed XML: {exc}") from exc
    if root.tag != "commonRoad":
        raise MapFormatError(f"CommonRoad map: root element is <{root.tag}>, expected <commonRoad>")
    map_id = root.get("benchmarkID", "") or map_id
    limits, signals = _signs(root)
    inside = {s.get("ref", "") for inter in root.iter("intersection") for inc in inter.iter("incoming")
              for tag in ("successorsRight", "successorsStraight", "successorsLeft") for s in inc.iter(tag)}
    lanes, stop_lines = [], []
    for el in root.findall("lanelet"):
        lid = el.get("id", "")
        left = _points(el.find("leftBound"), f"lanelet {lid} leftBound")
        right = _points(el.find("rightBound"), f"lanelet {lid} rightBound")
        if len(left) < 2 or left.shape != right.shape:
            raise MapFormatError(f"CommonRoad lanelet {lid}: bounds need the same number (>= 2) of points, "
                                 f"got {len(left)} and {len(right)}")
        types = [t.text.strip() for t in el.findall("laneletType") if t.text and t.text.strip()]
        sign_limits = [limits[r.get("ref", "")] for r in el.findall("trafficSignRef") if r.get("ref", "") in limits]
        limit = min(sign_limits) if sign_limits else None
        lanes.append(MapLane(lid, "+".join(types) or "unknown", 0.5 * (left + right), limit,
                             "map" if limit is not None else "", lid in inside if inside else None))
        stop = _points(el.find("stopLine"), f"lanelet {lid} stopLine")
        if len(stop):
            stop_lines.append(MapShape(f"{lid}/stop", stop))
    if not lanes:
        raise MapFormatError(f"CommonRoad map {map_id}: no <lanelet>")
    tags = root.find("scenarioTags")
    classes = () if tags is None else tuple(c for c in ROAD_CLASSES if tags.find(c) is not None)
    projection = _location(root)
    return MapFeatures(FORMAT, map_id, f"{FORMAT}:{map_id}", lanes, (), stop_lines, signals, classes,
                       projection=projection, georeference="approximate")


def load_commonroad_map(path: Path) -> MapFeatures:
    """Read and parse the CommonRoad file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MapFormatError(f"cannot read CommonRoad map {path}: {exc.strerror or exc}") from exc
    return parse_commonroad_map(data, path.stem)
