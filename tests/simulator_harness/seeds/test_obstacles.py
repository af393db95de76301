"""Obstacles in both CommonRoad formats: the real NGSIM file rewritten as 2018b imports exactly as
the 2020a original, and hand-written edge cases fail loudly, naming the obstacle or the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from simulator_harness.errors import CommonRoadError
from simulator_harness.seeds import (
    CommonRoadVersionError,
    NoAgentsError,
    load_commonroad,
    parse_commonroad,
    seed_from_commonroad,
)
from tests.simulator_harness.seeds.crdocs import US101, document, mover, shape, standing, to_2018b, two_lane_road


@pytest.fixture(scope="module")
def real_2018b() -> str:
    return to_2018b(US101.read_text())


def test_real_ngsim_file_in_the_2018b_form_yields_the_same_22_tracks(real_2018b: str) -> None:
    assert "<dynamicObstacle" not in real_2018b and real_2018b.count("<role>dynamic</role>") == 22
    old = load_commonroad(US101)
    new = parse_commonroad(real_2018b, "US101-2018b.xml")
    assert new.version == "2018b" and old.version == "2020a"
    assert new.trajectories.n_agents == 22  # the importer once read only <dynamicObstacle>: zero agents here
    for field in ("x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "valid", "agent_id", "kind", "length_m",
                  "width_m"):
        np.testing.assert_array_equal(getattr(new.trajectories, field), getattr(old.trajectories, field), field)
    np.testing.assert_array_equal(new.time_step, old.time_step)
    assert new.tags == old.tags and "traffic_jam" in new.tags  # 2018b: the root's tags attribute
    assert [la.lanelet_id for la in new.lanelets] == [la.lanelet_id for la in old.lanelets]
    assert seed_from_commonroad(new).spec == seed_from_commonroad(old).spec


def test_2018b_roles_shapes_and_speed_limits() -> None:
    road = two_lane_road().replace("</lanelet>", "<speedLimit>22.22</speedLimit></lanelet>")
    body = (road + mover(10, 20.0, 0.0, 24.3, version="2018b")
            + mover(11, 60.0, 3.5, 1.2, kind="pedestrian", version="2018b", shape_xml=shape(radius=0.35))
            + standing(12, 150.0, 0.0, version="2018b") + standing(13, 200.0, 5.5, "roadBoundary", "2018b"))
    cr = parse_commonroad(document(body, "2018b", tags=("urban", "multi_lane")))
    tr = cr.trajectories
    assert cr.tags == ("urban", "multi_lane")
    assert tr.agent_id is not None and tr.kind is not None and tr.length_m is not None
    assert tr.agent_id.tolist() == [10, 11] and tr.kind.tolist() == ["car", "pedestrian"]
    assert tr.length_m.tolist() == [4.5, pytest.approx(0.7)]  # a circle is read as its 2r square
    assert [(s.obstacle_id, s.kind, s.x_m) for s in cr.static_obstacles] == [(12, "parkedVehicle", 150.0),
                                                                             (13, "roadBoundary", 200.0)]
    assert [la.speed_limit_mps for la in cr.lanelets] == [22.22] * 4
    seed = seed_from_commonroad(cr)
    by_name = {a.name: a for a in seed.spec.actors}
    assert seed.ego_obstacle_id == 10 and set(by_name) == {"obstacle_11", "obstacle_12"}
    assert by_name["obstacle_11"].kind == "pedestrian" and by_name["obstacle_11"].intent == "walk"
    assert by_name["obstacle_12"].intent == "parked" and by_name["obstacle_12"].lane == 0
    assert seed.skipped == ((13, "a roadBoundary is not a road user the simulator models"),)
    assert seed.spec.road.speed_limit_mps == 25.0  # the file's 22.22 m/s, raised to the fastest track (24.3)
    slow = parse_commonroad(document(road + mover(10, 20.0, 0.0, 15.0, version="2018b"), "2018b"))
    assert seed_from_commonroad(slow).spec.road.speed_limit_mps == 22.22  # the file's, not the US-101 29 m/s


BAD = {
    "unknown role": (document(two_lane_road() + mover(5, 10, 0, 10, version="2018b").replace(
        "<role>dynamic</role>", "<role>ghost</role>"), "2018b"), "obstacle 5: <role> is 'ghost'"),
    "no role": (document(two_lane_road() + mover(5, 10, 0, 10, version="2018b").replace(
        "<role>dynamic</role>", ""), "2018b"), "obstacle 5: <role> is None"),
    "2020a form in a 2018b file": (document(two_lane_road() + mover(5, 10, 0, 10), "2018b"),
                                   "a 2018b file holds <dynamicObstacle>"),
    "2018b form in a 2020a file": (document(two_lane_road() + mover(5, 10, 0, 10, version="2018b")),
                                   "a 2020a file holds <obstacle>"),
    "set-based prediction": (document(two_lane_road() + mover(5, 10, 0, 10).replace(
        "<trajectory>", "<occupancySet><occupancy/></occupancySet><trajectoryX>").replace(
        "</trajectory>", "</trajectoryX>")), "dynamicObstacle 5: has a set-based prediction"),
    "polygon shape": (document(two_lane_road() + mover(5, 10, 0, 10, shape_xml="<shape><polygon/></shape>")),
                      "dynamicObstacle 5: a <polygon> shape is not supported"),
    "two shapes": (document(two_lane_road() + mover(5, 10, 0, 10, shape_xml=shape() [:-8] + shape()[7:])),
                   "dynamicObstacle 5: <shape> holds 2 shapes"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_obstacles_the_importer_cannot_use_are_named(name: str) -> None:
    text, message = BAD[name]
    with pytest.raises(CommonRoadError, match=message) as info:
        parse_commonroad(text, "edge.xml")
    assert str(info.value).startswith("edge.xml: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("version", ["2017a", "2018a", "2020b", None])
def test_other_versions_are_refused_by_name(version: str | None) -> None:
    text = document(two_lane_road() + mover(5, 10, 0, 10))
    text = text.replace('commonRoadVersion="2020a"', "" if version is None else f'commonRoadVersion="{version}"')
    with pytest.raises(CommonRoadVersionError, match="2018b") as info:
        parse_commonroad(text, "old.xml")
    assert str(info.value).startswith("old.xml: ")
    assert (repr(version) in str(info.value)) if version else "no commonRoadVersion" in str(info.value)


@pytest.mark.parametrize("version", ["2018b", "2020a"])
def test_a_file_without_agents_is_a_typed_error_naming_the_file(version: str, tmp_path: Path) -> None:
    for name, body in (("empty.xml", two_lane_road()), ("parked_only.xml", two_lane_road() + standing(7, 50, 0,
                                                                                                       version=version))):
        path = tmp_path / name
        path.write_text(document(body, version))
        with pytest.raises(NoAgentsError, match=f"^{re.escape(name)}: no dynamic obstacle") as info:
            load_commonroad(path)
        assert info.value.reason == "no_agents" and info.value.source == name


def test_obstacles_all_off_the_road_are_no_agents() -> None:
    cr = parse_commonroad(document(two_lane_road() + mover(5, 10, 40.0, 10) + mover(6, 10, -30.0, 10)), "off.xml")
    with pytest.raises(NoAgentsError, match=r"^off\.xml: none of its 2 obstacles"):
        seed_from_commonroad(cr)
