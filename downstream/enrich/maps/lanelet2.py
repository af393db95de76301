"""Lanelet2 HD maps in their OSM XML form: lanelets, crosswalks, stop lines, traffic lights and signs.

Nodes carry WGS-84 ``lat``/``lon``; they are projected to a local east-north frame about the
centre of the map's node bounding box (:class:`~.geo.LocalProjection`), so the map is
georeferenced. What becomes what:

- a lanelet relation of a driveable subtype (``road``, ``highway``, ``play_street``, ``bus_lane``,
  ``bicycle_lane``, ``emergency_lane``) → a lane whose centre line is the mean of its ``left`` and
  ``right`` bounds resampled to the same arc-length fractions (a bound stored against the other's
  direction is reversed first). Its type is the subtype joined with the ``location`` tag when
  there is one (``road+urban``, ``highway+urban``), its speed limit the lanelet's
  ``speed_limit`` tag (km/h, as Lanelet2 writes it) if any, else the country default of Lanelet2's
  German traffic rules for ``region=de`` (urban road 50 km/h, non-urban 100 km/h, highway 130 km/h
  advisory, play street 7 km/h; a bicycle lane gets the rules' 20 km/h for cyclists), marked
  ``country_default``;
- a lanelet of subtype ``crosswalk`` → a crosswalk (its bounds joined into an outline);
- a way of type ``stop_line`` → a stop line;
- a way of type ``traffic_light`` or ``traffic_sign`` → a signal at its nodes' mean, kind
  ``traffic_light:<subtype>`` or ``traffic_sign:<subtype>``, linked to the ``ref_line`` (stop line)
  of the regulatory element that refers to it.

Lanelet2 maps do not mark intersections, so ``in_intersection`` stays None.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from downstream.enrich.errors import MapFormatError
from downstream.enrich.maps.features import FloatArray, MapFeatures, MapLane, MapShape, MapSignal
from downstream.enrich.maps.geo import LocalProjection

FORMAT = "lanelet2"
LANE_SUBTYPES = frozenset({"road", "highway", "play_street", "bus_lane", "bicycle_lane", "emergency_lane"})
#: Lanelet2 ``germanSpeedLimits()`` (km/h) by lanelet subtype and location.
GERMAN_DEFAULTS_KMH = {("road", "urban"): 50.0, ("road", "nonurban"): 100.0, ("highway", "urban"): 130.0,
                       ("highway", "nonurban"): 130.0, ("play_street", "urban"): 7.0,
                       ("play_street", "nonurban"): 7.0, ("bicycle_lane", "urban"): 20.0,
                       ("bicycle_lane", "nonurban"): 20.0}


def _tags(el: ET.Element) -> dict[str, str]:
    return {t.get("k", ""): t.get("v", "") for t in el.findall("tag")}


def _resample(line: FloatArray, n: int) -> FloatArray:
    seg = np.hypot(*np.diff(line, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(line[:1], n, axis=0)
    at = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(at, s, line[:, 0]), np.interp(at, s, line[:, 1])], axis=1)


def _aligned(left: FloatArray, right: FloatArray) -> FloatArray:
    """``right`` turned to run the way ``left`` runs (Lanelet2 may store a bound either way)."""
    if np.hypot(*(left[0] - right[-1])) + np.hypot(*(left[-1] - right[0])) < \
            np.hypot(*(left[0] - right[0])) + np.hypot(*(left[-1] - right[-1])):
        return right[::-1]
    return right


def centre_line(left: FloatArray, right: FloatArray) -> FloatArray:
    """Mean of two bounds at equal arc-length fractions (``right`` aligned with ``left`` first)."""
    right = _aligned(left, right)
    n = max(len(left), len(right), 2)
    return np.asarray(0.5 * (_resample(left, n) + _resample(right, n)), dtype=np.float64)


def _speed_kmh(text: str, where: str) -> float:
    try:
        return float(text.lower().replace("km/h", "").replace("kmh", "").strip())
    except ValueError as exc:
        raise MapFormatError(f"{where}: speed_limit {text!r} is not a number of km/h") from exc


def parse_lanelet2(xml_text: str | bytes, map_id: str = "lanelet2") -> MapFeatures:
    """Parse a Lanelet2 OSM document; raises :class:`MapFormatError` naming the bad element."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise MapFormatError(f"Lanelet2 map {map_id}: not well-formed XML: {exc}") from exc
    if root.tag != "osm":
        raise MapFormatError(f"Lanelet2 map {map_id}: root element is <{root.tag}>, expected <osm>")
    try:
        geo = {n.get("id", ""): (float(n.get("lat", "")), float(n.get("lon", ""))) for n in root.iter("node")}
    except ValueError as exc:
        raise MapFormatError(f"Lanelet2 map {map_id}: a node lacks numeric lat/lon ({exc}); "
                             "only lat/lon-georeferenced OSM files are supported") from exc
    if not geo:
        raise MapFormatError(f"Lanelet2 map {map_id}: no nodes")
    ll = np.array(list(geo.values()))
    proj = LocalProjection(round(float(ll[:, 0].min() + ll[:, 0].max()) / 2, 6),
                           round(float(ll[:, 1].min() + ll[:, 1].max()) / 2, 6))
    xy = dict(zip(geo, proj.to_local(ll[:, 0], ll[:, 1]), strict=True))
    ways: dict[str, tuple[FloatArray, dict[str, str]]] = {}
    for w in root.iter("way"):
        refs = [nd.get("ref", "") for nd in w.findall("nd")]
        missing = [r for r in refs if r not in xy]
        if not refs:
            continue  # an empty way (the example map holds some); a lanelet using one fails below
        if missing:
            raise MapFormatError(f"Lanelet2 map {map_id}: way {w.get('id')} refers to missing nodes {missing[:3]}")
        ways[w.get("id", "")] = (np.array([xy[r] for r in refs]), _tags(w))
    lanes, crosswalks, ref_lines = [], [], {}
    for rel in root.iter("relation"):
        tags, rid = _tags(rel), rel.get("id", "")
        members = [(m.get("ref", ""), m.get("role", "")) for m in rel.findall("member")]
        if tags.get("type") == "regulatory_element":
            stop = next((ref for ref, role in members if role == "ref_line"), None)
            ref_lines.update({ref: stop for ref, role in members if role == "refers" and stop is not None})
            continue
        subtype = tags.get("subtype", "road")
        if tags.get("type") != "lanelet" or (subtype not in LANE_SUBTYPES and subtype != "crosswalk"):
            continue
        bounds = {role: ref for ref, role in members if role in ("left", "right")}
        if set(bounds) != {"left", "right"} or any(b not in ways for b in bounds.values()):
            raise MapFormatError(f"Lanelet2 map {map_id}: lanelet {rid} needs a left and a right way")
        left, right = ways[bounds["left"]][0], ways[bounds["right"]][0]
        if subtype == "crosswalk":
            crosswalks.append(MapShape(rid, np.vstack([left, _aligned(left, right)[::-1]])))
            continue
        limit, source = None, ""
        if "speed_limit" in tags:
            limit, source = _speed_kmh(tags["speed_limit"], f"lanelet {rid}") / 3.6, "map"
        elif tags.get("region") == "de":
            kmh = GERMAN_DEFAULTS_KMH.get((subtype, tags.get("location", "urban")))
            if kmh is not None:
                limit, source = kmh / 3.6, "country_default"
        lane_type = subtype + (f"+{tags['location']}" if tags.get("location") else "")
        lanes.append(MapLane(rid, lane_type, centre_line(left, right), limit, source, None))
    stop_lines = [MapShape(wid, pts) for wid, (pts, t) in ways.items() if t.get("type") == "stop_line"]
    signals = [MapSignal(wid, f"{t['type']}:{t.get('subtype', 'unknown')}", pts.mean(axis=0), ref_lines.get(wid))
               for wid, (pts, t) in ways.items() if t.get("type") in ("traffic_light", "traffic_sign")]
    if not lanes:
        raise MapFormatError(f"Lanelet2 map {map_id}: no driveable lanelets")
    return MapFeatures(FORMAT, map_id, f"{FORMAT}:{map_id}", lanes, crosswalks, stop_lines, signals,
                       projection=proj, georeference="wgs84")


def load_lanelet2(path: Path) -> MapFeatures:
    """Read and parse the Lanelet2 OSM file at ``path`` (its stem is the map id)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MapFormatError(f"cannot read Lanelet2 map {path}: {exc.strerror or exc}") from exc
    return parse_lanelet2(data, path.stem)
