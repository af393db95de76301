"""The AV2 vector-map reader on log adcf7d18's real map, queried along the log's real ego path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from downstream.enrich.errors import MapFormatError, NotGeoreferenced
from downstream.enrich.maps.av2 import load_av2_map, parse_av2_map
from downstream.enrich.maps.context import GeoTrajectory, LocalTrajectory
from tests.downstream.enrich.real_data import AV2_ADCF, AV2_ADCF_MAP, av2_poses

RADIUS_M = 20.0


def test_the_ego_path_meets_the_lanes_and_crossings_around_it() -> None:
    m = load_av2_map(AV2_ADCF_MAP)
    doc = json.loads(AV2_ADCF_MAP.read_text())
    assert m.frame == "av2:PIT_city_57819" and len(m.lanes) == len(doc["lane_segments"]) == 199
    path = av2_poses(AV2_ADCF).translation_m[:, :2]
    ctx = m.context(LocalTrajectory(path, m.frame), RADIUS_M)
    assert ctx is not None and ctx.georeference == "local" and ctx.lanes[0].distance_m < 1.0
    # Oracle on the raw JSON: crossing corners within the radius of a recorded pose must be in the
    # context; crossings whose every corner lies 20 m beyond it must not.
    corner_d = {str(pc["id"]): min(float(np.hypot(*(path - (p["x"], p["y"])).T).min()) for p in pc["edge1"] + pc["edge2"])
                for pc in doc["pedestrian_crossings"].values()}
    found = {c.crosswalk_id for c in ctx.crosswalks}
    assert {k for k, d in corner_d.items() if d < RADIUS_M - 1} <= found
    assert not found & {k for k, d in corner_d.items() if d > RADIUS_M + 20}
    assert len(found) == 4
    on_route = [la for la in ctx.lanes if la.distance_m < 2.0]
    assert any(la.in_intersection for la in on_route) and any(not la.in_intersection for la in on_route)
    assert {la.lane_type for la in ctx.lanes} <= {"vehicle", "bike", "bus"}


def test_wgs84_queries_are_refused() -> None:
    with pytest.raises(NotGeoreferenced, match="LocalTrajectory"):
        load_av2_map(AV2_ADCF_MAP).context(GeoTrajectory(np.array([40.44]), np.array([-80.0])), 10.0)


def test_malformed_archives_are_typed_errors(tmp_path: object) -> None:
    with pytest.raises(MapFormatError, match="lane_segments"):
        parse_av2_map([], "x", "PIT")
    with pytest.raises(MapFormatError, match="at least 2 points"):
        parse_av2_map({"lane_segments": {"1": {"left_lane_boundary": [{"x": 0, "y": 0}],
                                               "right_lane_boundary": []}}}, "x", "PIT")
    with pytest.raises(MapFormatError, match="no city"):
        load_av2_map(AV2_ADCF / "map" / "log_map_archive_nocity.json")
