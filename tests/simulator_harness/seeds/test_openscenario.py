"""OpenSCENARIO 1.3 export: parse the written file back and check its structure and values."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulator_harness.errors import ScenarioExportError
from simulator_harness.seeds.commonroad import load_commonroad
from simulator_harness.seeds.openscenario import (
    XoscActor,
    XoscEvent,
    XoscScenario,
    XoscTimeOfDay,
    XoscWeather,
    to_xosc,
    write_xosc,
    xosc_from_commonroad,
)

US101 = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"
TOP_LEVEL = ["FileHeader", "ParameterDeclarations", "CatalogLocations", "RoadNetwork", "Entities", "Storyboard"]


def cut_in() -> XoscScenario:
    return XoscScenario(
        name="cut_in", duration_s=12.0, road_network="maps/highway.xodr", parameters={"GapM": 8.0},
        actors=(XoscActor("ego", 25.0, lane_id=-1, s_m=50.0),
                XoscActor("npc", 22.0, lane_id=-2, s_m=65.0, length_m=5.0)),
        events=(XoscEvent(4.0, "npc", "lane_change", {"lane_offset": 1, "duration_s": 2.5}),
                XoscEvent(2.0, "npc", "speed", {"speed_mps": 27.0, "duration_s": 1.5}),
                XoscEvent(7.0, "ego", "speed", {"speed_mps": 15.0})),
        time_of_day=XoscTimeOfDay("2024-11-02T18:30:00"),
        weather=XoscWeather(precipitation="rain", precipitation_mm_per_h=4.0, fog_visual_range_m=800.0,
                        cloud_cover="sevenOktas"))


def top(tree: ET.ElementTree[Any]) -> ET.Element:
    root: ET.Element | None = tree.getroot()
    assert root is not None
    return root


def el(node: ET.Element, path: str) -> ET.Element:
    found = node.find(path)
    assert found is not None, path
    return found


def attr(node: ET.Element, path: str, name: str) -> str:
    value = el(node, path).get(name)
    assert value is not None, f"{path}@{name}"
    return value


def num(node: ET.Element, path: str, name: str) -> float:
    return float(attr(node, path, name))


def test_written_file_parses_back_with_the_openscenario_skeleton(tmp_path: Path) -> None:
    path = write_xosc(tmp_path / "cut_in.xosc", cut_in(), date=datetime(2025, 1, 2, tzinfo=UTC))
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = top(ET.parse(path))
    assert root.tag == "OpenSCENARIO"
    assert [c.tag for c in root] == TOP_LEVEL
    header = el(root, "FileHeader")
    assert (header.get("revMajor"), header.get("revMinor"), header.get("date")) == ("1", "3", "2025-01-02T00:00:00")
    params = {p.get("name"): float(p.get("value", "nan")) for p in root.iter("ParameterDeclaration")}
    assert params == {"Duration": 12.0, "GapM": 8.0}
    assert attr(root, "RoadNetwork/LogicFile", "filepath") == "maps/highway.xodr"
    assert [o.get("name") for o in root.findall("Entities/ScenarioObject")] == ["ego", "npc"]
    assert num(root, "Entities/ScenarioObject[@name='npc']/Vehicle/BoundingBox/Dimensions", "length") == 5.0
    assert attr(root, "Storyboard/StopTrigger//SimulationTimeCondition", "value") == "$Duration"
    assert [c.tag for c in el(root, "Storyboard")] == ["Init", "Story", "StopTrigger"]


def test_init_teleports_sets_speed_and_environment() -> None:
    root = top(to_xosc(cut_in()))
    env = el(root, "Storyboard/Init/Actions/GlobalAction/EnvironmentAction/Environment")
    assert attr(env, "TimeOfDay", "dateTime") == "2024-11-02T18:30:00"
    assert attr(env, "Weather", "fractionalCloudCover") == "sevenOktas"
    assert attr(env, "Weather/Precipitation", "precipitationType") == "rain"
    assert num(env, "Weather/Fog", "visualRange") == 800.0
    npc = el(root, "Storyboard/Init/Actions/Private[@entityRef='npc']")
    lane = "PrivateAction/TeleportAction/Position/LanePosition"
    assert (attr(npc, lane, "laneId"), num(npc, lane, "s")) == ("-2", 65.0)
    assert num(npc, ".//SpeedActionTarget/AbsoluteTargetSpeed", "value") == 22.0


def test_story_events_are_ordered_and_triggered_by_simulation_time() -> None:
    root = top(to_xosc(cut_in()))
    groups = root.findall("Storyboard/Story/Act/ManeuverGroup")
    assert [attr(g, "Actors/EntityRef", "entityRef") for g in groups] == ["ego", "npc"]
    npc_events = groups[1].findall("Maneuver/Event")
    assert [num(e, "StartTrigger//SimulationTimeCondition", "value") for e in npc_events] == [2.0, 4.0]
    speed, lane_change = (el(e, "Action/PrivateAction") for e in npc_events)
    assert num(speed, ".//AbsoluteTargetSpeed", "value") == 27.0
    assert attr(speed, ".//SpeedActionDynamics", "dynamicsShape") == "linear"
    target = "LateralAction/LaneChangeAction/LaneChangeTarget/RelativeTargetLane"
    assert (attr(lane_change, target, "entityRef"), attr(lane_change, target, "value")) == ("npc", "1")
    assert num(lane_change, ".//LaneChangeActionDynamics", "value") == 2.5
    assert root.find("Storyboard/Story/Act/StartTrigger") is not None


def test_commonroad_seed_exports_as_trajectories(tmp_path: Path) -> None:
    cr = load_commonroad(US101)
    sc = xosc_from_commonroad(cr, stride=5)
    root = top(ET.parse(write_xosc(tmp_path / "us101.xosc", sc)))
    assert len(root.findall("Entities/ScenarioObject")) == 22
    tr = cr.trajectories
    follows = root.findall(".//FollowTrajectoryAction")
    assert len(follows) == 22
    first = follows[0]
    assert attr(first, "TimeReference/Timing", "domainAbsoluteRelative") == "absolute"
    vertices = first.findall("TrajectoryRef/Trajectory/Shape/Polyline/Vertex")
    valid = np.flatnonzero(tr.valid[0])
    assert len(vertices) == len(np.unique(np.append(valid[::5], valid[-1])))
    assert num(vertices[-1], "Position/WorldPosition", "x") == pytest.approx(tr.x_m[0, valid[-1]], abs=1e-5)
    assert num(vertices[-1], "Position/WorldPosition", "y") == pytest.approx(tr.y_m[0, valid[-1]], abs=1e-5)
    times = [float(v.get("time", "nan")) for v in vertices]
    assert times[0] == 0.0 and np.all(np.diff(times) > 0) and times[-1] == pytest.approx(0.1 * valid[-1])
    assert num(root, "Storyboard/Init/Actions/Private[@entityRef='obstacle_373']//WorldPosition", "x") == \
        pytest.approx(20.8465)
    assert num(root, "ParameterDeclarations/ParameterDeclaration", "value") == pytest.approx(10.0)
    assert root.find("RoadNetwork/LogicFile") is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: XoscEvent(1.0, "npc", "teleport"),
        lambda: XoscEvent(1.0, "npc", "lane_change", {"lane_offset": 0.5}),
        lambda: XoscEvent(1.0, "npc", "speed", {}),
        lambda: XoscEvent(1.0, "npc", "follow_trajectory", vertices=((0.0, 0.0, 0.0, 0.0),)),
        lambda: XoscScenario("x", 5.0, (XoscActor("a", 1.0),), (XoscEvent(1.0, "b", "speed", {"speed_mps": 1}),)),
        lambda: XoscScenario("x", 5.0, (XoscActor("a", 1.0),), (XoscEvent(9.0, "a", "speed", {"speed_mps": 1}),)),
        lambda: XoscScenario("x", 5.0, (XoscActor("a", 1.0), XoscActor("a", 2.0))),
        lambda: XoscActor("a", -1.0),
        lambda: XoscWeather(precipitation="hail"),
    ],
)
def test_bad_descriptions_raise_typed_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ScenarioExportError) as info:
        build()
    assert info.value.reason == "bad_xosc_scenario"
