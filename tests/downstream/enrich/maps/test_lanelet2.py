"""The Lanelet2 reader on the real Karlsruhe HD map (Lanelet2's own example map).

The oracle reads the OSM XML independently (ElementTree, no projection) and measures great-circle
distances between raw node coordinates; the reader projects to local metres and measures
point-to-segment distances. The two must agree on what lies within the radius.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from downstream.enrich.errors import MapFormatError
from downstream.enrich.maps.context import GeoTrajectory
from downstream.enrich.maps.lanelet2 import load_lanelet2, parse_lanelet2
from tests.downstream.enrich.real_data import LANELET2_OSM

RADIUS_M = 30.0
#: Lanelet 44996 runs through the signalised intersection at about 49.0052 N, 8.4156 E.
THROUGH_JUNCTION = "44996"

ROOT = ET.parse(LANELET2_OSM).getroot()
NODES = {n.get("id", ""): (float(n.get("lat", "")), float(n.get("lon", ""))) for n in ROOT.iter("node")}


def _tags(el: ET.Element) -> dict[str, str]:
    return {t.get("k", ""): t.get("v", "") for t in el.findall("tag")}


WAYS = {w.get("id", ""): ([nd.get("ref", "") for nd in w.findall("nd")], _tags(w)) for w in ROOT.iter("way")}
#: relation id → (tags, role → member ref; the last member of a role wins)
RELATIONS = {r.get("id", ""): (_tags(r), {m.get("role", ""): m.get("ref", "") for m in r.findall("member")})
             for r in ROOT.iter("relation")}


def haversine_m(a: tuple[float, float], b: np.ndarray) -> np.ndarray:
    lat1, lon1 = np.radians(a)
    lat2, lon2 = np.radians(b[:, 0]), np.radians(b[:, 1])
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return np.asarray(2 * 6_371_008.8 * np.arcsin(np.sqrt(h)))


def way_latlon(way_id: str) -> np.ndarray:
    return np.array([NODES[r] for r in WAYS[way_id][0]])


def dense(latlon: np.ndarray, step: int = 50) -> np.ndarray:
    """A polyline in lat/lon with ``step`` points per edge (sub-metre spacing here)."""
    parts = [np.linspace(a, b, step, endpoint=False) for a, b in itertools.pairwise(latlon)]
    return np.vstack([*parts, latlon[-1:]])


@pytest.fixture(scope="module")
def karlsruhe() -> object:
    return load_lanelet2(LANELET2_OSM)


def test_reads_every_lanelet_crossing_stop_line_and_signal(karlsruhe: object) -> None:
    kinds = Counter(tags.get("subtype") for tags, _ in RELATIONS.values() if tags.get("type") == "lanelet")
    ways = Counter(tags.get("type") for _, tags in WAYS.values())
    m = karlsruhe
    assert len(m.lanes) == kinds["road"] + kinds["highway"] + kinds["bicycle_lane"] == 359  # type: ignore[attr-defined]
    assert len(m.crosswalks) == kinds["crosswalk"] == 8  # type: ignore[attr-defined]
    assert len(m.stop_lines) == ways["stop_line"] == 28  # type: ignore[attr-defined]
    lights = [s for s in m.signals if s.kind.startswith("traffic_light")]  # type: ignore[attr-defined]
    assert len(lights) == ways["traffic_light"] == 10
    # Every light a traffic_light regulatory element refers to is linked to that element's stop line.
    linked = {ref: members["ref_line"] for tags, members in RELATIONS.values()
              if tags.get("subtype") == "traffic_light" for ref in [members.get("refers")]}
    assert all(s.stop_line_id is not None for s in lights if s.signal_id in linked)


def test_a_trajectory_through_the_junction_finds_its_lights_and_crosswalks(karlsruhe: object) -> None:
    _, members = RELATIONS[THROUGH_JUNCTION]
    path = dense(way_latlon(members["right"]))  # the lanelet's right bound as the drive
    ctx = karlsruhe.context(GeoTrajectory(path[:, 0], path[:, 1]), RADIUS_M)  # type: ignore[attr-defined]
    assert ctx is not None and ctx.covered and ctx.georeference == "wgs84"
    assert THROUGH_JUNCTION in {la.lane_id for la in ctx.lanes}

    def oracle(kind: str) -> tuple[set[str], set[str]]:
        """Ids certainly inside (< radius - 1 m) and certainly outside (> radius + 1 m) the radius."""
        inside: set[str] = set()
        outside: set[str] = set()
        for wid, (_, tags) in WAYS.items():
            if tags.get("type") != kind:
                continue
            d = haversine_m(tuple(way_latlon(wid).mean(axis=0)), path).min()
            (inside if d < RADIUS_M - 1 else outside if d > RADIUS_M + 1 else set()).add(wid)
        return inside, outside

    lights = {s.signal_id for s in ctx.signals if s.kind.startswith("traffic_light")}
    inside, outside = oracle("traffic_light")
    assert len(inside) >= 8 and inside <= lights and not lights & outside
    crossings = {c.crosswalk_id for c in ctx.crosswalks}
    near = {rid for rid, (tags, m) in RELATIONS.items() if tags.get("subtype") == "crosswalk"
            and min(haversine_m(p, path).min() for side in ("left", "right") for p in way_latlon(m[side])) < RADIUS_M - 1}
    far = {rid for rid, (tags, m) in RELATIONS.items() if tags.get("subtype") == "crosswalk"
           and min(haversine_m(p, path).min() for side in ("left", "right") for p in way_latlon(m[side])) > RADIUS_M + 20}
    assert near == {"44986", "45170", "45172", "45174"} and near <= crossings and not crossings & far
    assert ctx.stop_lines and all(la.distance_m <= RADIUS_M for la in ctx.lanes)
    assert [la.distance_m for la in ctx.lanes] == sorted(la.distance_m for la in ctx.lanes)


def test_speed_limits_follow_the_german_rules(karlsruhe: object) -> None:
    limits = Counter((la.lane_type, la.speed_limit_mps and round(la.speed_limit_mps * 3.6), la.speed_limit_source)
                     for la in karlsruhe.lanes)  # type: ignore[attr-defined]
    assert limits[("road+urban", 50, "country_default")] == 305
    assert limits[("highway+urban", 130, "country_default")] == 8
    assert limits[("road+urban", None, "")] == 32  # lanelets without region=de get no default


def test_far_away_is_not_covered(karlsruhe: object) -> None:
    paris = GeoTrajectory(np.array([48.8566]), np.array([2.3522]))
    assert karlsruhe.context(paris, 100.0) is None  # type: ignore[attr-defined]
    lat = np.array([max(n[0] for n in NODES.values()) + 0.01])  # ~1.1 km north of the map's last node
    assert karlsruhe.context(GeoTrajectory(lat, np.array([8.435])), 500.0) is None  # type: ignore[attr-defined]


def test_highway_lanelets_are_found_by_their_subtype(karlsruhe: object) -> None:
    rid = next(r for r, (tags, _) in RELATIONS.items() if tags.get("subtype") == "highway")
    path = dense(way_latlon(RELATIONS[rid][1]["left"]))
    ctx = karlsruhe.context(GeoTrajectory(path[:, 0], path[:, 1]), 5.0)  # type: ignore[attr-defined]
    assert ctx is not None and rid in {la.lane_id for la in ctx.lanes if la.lane_type == "highway+urban"}
    assert math.isclose(next(la for la in ctx.lanes if la.lane_id == rid).distance_m, 0.0, abs_tol=2.5)


@pytest.mark.parametrize(("doc", "match"), [
    (b"<osm", "well-formed"), (b"<map/>", "expected <osm>"),
    (b"<osm><node id='1' lat='x' lon='1'/></osm>", "lat/lon"),
    (b"<osm><node id='1' lat='49' lon='8'/><way id='2'><nd ref='9'/></way></osm>", "missing nodes"),
    (b"<osm><node id='1' lat='49' lon='8'/><relation id='3'><tag k='type' v='lanelet'/></relation></osm>",
     "left and a right"),
    (b"<osm><node id='1' lat='49' lon='8'/></osm>", "no driveable"),
])
def test_malformed_maps_are_typed_errors(doc: bytes, match: str) -> None:
    with pytest.raises(MapFormatError, match=match):
        parse_lanelet2(doc)
