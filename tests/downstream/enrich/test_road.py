"""Road type and geometry from real map contexts (Lanelet2, CommonRoad, AV2), else the speed profile."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.enrich.errors import EnrichInputError
from downstream.enrich.maps.context import GeoTrajectory, LocalTrajectory, MapContext, gnss_box
from downstream.enrich.maps.registry import open_map
from downstream.enrich.records import EgoStates
from downstream.enrich.road import road_geometry, road_tags, road_type_from_map, road_type_from_speed
from downstream.enrich.tags import Tag, TagSource
from shared.payloads import VehicleState, decode_small
from tests.downstream.enrich import real_data as rd
from tests.downstream.enrich.maps.test_lanelet2 import RELATIONS, dense, way_latlon
from vehicle.replay.comma2k19 import load_segment, segment_messages


def karlsruhe(lanelet: str, side: str, radius_m: float) -> MapContext:
    path = dense(way_latlon(RELATIONS[lanelet][1][side]))
    ctx = open_map("lanelet2", rd.LANELET2_OSM).context(GeoTrajectory(path[:, 0], path[:, 1]), radius_m)
    assert ctx is not None
    return ctx


def ego(speed_mps: float, seconds: float) -> EgoStates:
    t = np.arange(0, int(seconds * 10) + 1, dtype=np.int64) * 100_000_000
    return EgoStates(t, np.full(t.size, speed_mps), np.zeros(t.size))


def test_karlsruhe_junction_is_an_urban_intersection() -> None:
    ctx = karlsruhe("44996", "right", 30.0)
    assert road_tags(ctx, None) == (Tag("road_type", "urban", TagSource.MAP, 0.8),
                                    Tag("road_geometry", "intersection", TagSource.MAP, 0.7))


def test_karlsruhe_highway_lanelets_make_a_highway() -> None:
    rid = next(r for r, (tags, _) in RELATIONS.items() if tags.get("subtype") == "highway")
    assert road_type_from_map(karlsruhe(rid, "left", 10.0)) == Tag("road_type", "highway", TagSource.MAP, 0.9)


def test_us101_is_a_straight_highway_despite_its_urban_lanelets() -> None:
    m = open_map("commonroad", rd.COMMONROAD_US101)
    ego_states, _ = rd.ngsim_as_ego(17)
    xy = np.stack([ego_states.x_m, ego_states.y_m], axis=1)  # type: ignore[list-item]
    ctx = m.context(LocalTrajectory(xy, m.frame), 20.0)
    assert ctx is not None and {la.lane_type for la in ctx.lanes} == {"urban"}
    assert road_tags(ctx, ego_states) == (Tag("road_type", "highway", TagSource.MAP, 0.8),
                                          Tag("road_geometry", "straight", TagSource.MAP, 0.6))


def test_av2_pittsburgh_path_crosses_an_intersection() -> None:
    m = open_map("av2", rd.AV2_ADCF_MAP)
    ctx = m.context(LocalTrajectory(rd.av2_poses(rd.AV2_ADCF).translation_m[:, :2], m.frame), 20.0)
    assert ctx is not None
    # AV2 lane types (vehicle, bike, bus) say nothing of the road class; its crosswalks do.
    assert road_type_from_map(ctx) == Tag("road_type", "urban", TagSource.MAP, 0.6)
    assert road_geometry(ctx) == Tag("road_geometry", "intersection", TagSource.MAP, 0.8)


def test_real_comma2k19_speed_profile_is_left_untagged() -> None:
    """I-280 in slow traffic (8-20 m/s): neither a highway by speed nor slow enough for urban; the
    speed profile honestly says nothing."""
    msgs = [m for m in segment_messages(load_segment(rd.REAL / "comma2k19" / "seg40")) if m.topic == "vehicle_state"]
    states = EgoStates.from_states([m.t_sensor_ns for m in msgs], [decode_small(m.payload, VehicleState) for m in msgs])
    assert float(states.speed_mps.min()) > 7.5 and float(states.speed_mps.max()) < 21.0
    assert road_type_from_speed(states) is None
    assert road_tags(gnss_box(GeoTrajectory(np.array([37.7]), np.array([-122.4])), 50.0), states) == ()


@pytest.mark.parametrize(("speed", "seconds", "expected"), [
    (25.0, 20.0, Tag("road_type", "highway", TagSource.SPEED_PROFILE, 0.6)),
    (8.0, 20.0, Tag("road_type", "urban", TagSource.SPEED_PROFILE, 0.4)),
    (17.0, 20.0, None), (25.0, 5.0, None)])
def test_speed_profile_rules(speed: float, seconds: float, expected: Tag | None) -> None:
    assert road_type_from_speed(ego(speed, seconds)) == expected
    assert road_tags(None, ego(speed, seconds)) == (() if expected is None else (expected,))


def test_road_tags_need_something_to_go_on() -> None:
    with pytest.raises(EnrichInputError):
        road_tags(None, None)
