"""CommonRoad import on the real NGSIM US-101 scenario, and typed errors for broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator_harness.errors import CommonRoadError, SimulatorError
from simulator_harness.seeds.commonroad import CommonRoadScenario, load_commonroad, parse_commonroad

US101 = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"


@pytest.fixture(scope="module")
def scenario() -> CommonRoadScenario:
    return load_commonroad(US101)


def test_header_and_lanelet_graph(scenario: CommonRoadScenario) -> None:
    assert scenario.benchmark_id == "USA_US101-4_1_T-1"
    assert scenario.version == "2020a" and scenario.dt_s == pytest.approx(0.1)
    assert "highway" in scenario.tags and "traffic_jam" in scenario.tags
    by_id = {la.lanelet_id: la for la in scenario.lanelets}
    assert len(by_id) == 12
    assert by_id[2].successors == (4,) and by_id[4].predecessors == (2,)
    assert by_id[42].adjacent_left == 2 and by_id[42].adjacent_right == 6
    assert by_id[2].left_marking == "broad_solid"
    for la in scenario.lanelets:
        np.testing.assert_allclose(la.centre_m, 0.5 * (la.left_m + la.right_m))
        width = np.linalg.norm(la.left_m - la.right_m, axis=1)
        assert np.all((width > 2.0) & (width < 6.0)), la.lanelet_id  # a highway lane is about 3.7 m
        for succ in la.successors:  # a successor starts where its predecessor ends
            assert np.linalg.norm(by_id[succ].centre_m[0] - la.centre_m[-1]) < 0.5


def test_22_trajectories_on_a_monotonic_time_grid(scenario: CommonRoadScenario) -> None:
    tr = scenario.trajectories
    assert tr.agent_id is not None and tr.kind is not None and tr.length_m is not None and tr.width_m is not None
    assert tr.n_agents == 22 and len(set(tr.agent_id.tolist())) == 22
    assert set(tr.kind) == {"car"}
    assert tr.x_m.shape == tr.valid.shape == (22, 101)
    assert np.all(np.diff(scenario.time_step) == 1)
    np.testing.assert_allclose(np.diff(tr.t_s), 0.1)
    assert tr.valid[:, 0].all()  # every obstacle has an initial state at step 0
    assert tr.valid.sum(axis=1).tolist()[:3] == [8, 18, 9]  # initial state + trajectory states
    assert np.all(np.isnan(tr.x_m[~tr.valid])) and np.all(np.isfinite(tr.x_m[tr.valid]))
    for row in tr.valid:  # each track is one contiguous run
        idx = np.flatnonzero(row)
        assert np.all(np.diff(idx) == 1)
    # NGSIM types every vehicle "car"; one is 10.5 m long, a bus or truck.
    assert np.all((tr.length_m > 3.0) & (tr.length_m < 13.0) & (tr.width_m > 1.4) & (tr.width_m < 2.6))


def test_speeds_are_plausible_and_agree_with_positions(scenario: CommonRoadScenario) -> None:
    tr = scenario.trajectories
    speed = tr.speed_mps[tr.valid]
    assert speed.min() >= 0.0 and speed.max() < 35.0
    assert 5.0 < float(np.median(speed)) < 30.0
    # The file tags this a traffic jam: a minority of samples crawls below 5 m/s.
    assert 0.5 < float(np.mean(speed >= 5.0)) < 0.9
    dx, dy = np.diff(tr.x_m, axis=1), np.diff(tr.y_m, axis=1)
    moved = np.hypot(dx, dy) / scenario.dt_s
    reported = 0.5 * (tr.speed_mps[:, 1:] + tr.speed_mps[:, :-1])
    ok = np.isfinite(moved)
    assert float(np.median(np.abs(moved[ok] - reported[ok]))) < 0.1
    heading = np.arctan2(dy, dx)
    fast = ok & (moved > 2.0)
    err = np.angle(np.exp(1j * (heading[fast] - tr.yaw_rad[:, 1:][fast])))
    assert float(np.median(np.abs(err))) < 0.05


def test_positions_lie_inside_the_lanelet_map(scenario: CommonRoadScenario) -> None:
    x0, y0, x1, y1 = scenario.map_bounds_m()
    tr = scenario.trajectories
    x, y = tr.x_m[tr.valid], tr.y_m[tr.valid]
    assert x.min() >= x0 and x.max() <= x1 and y.min() >= y0 and y.max() <= y1


BROKEN = {
    "not xml": (b"<commonRoad", "well-formed"),
    "wrong root": (b"<osm/>", "expected <commonRoad>"),
    "old version": (b'<commonRoad commonRoadVersion="2017a" timeStepSize="0.1"/>', "not supported"),
    "bad dt": (b'<commonRoad commonRoadVersion="2020a" timeStepSize="x"/>', "timeStepSize"),
    "no lanelets": (b'<commonRoad commonRoadVersion="2020a" timeStepSize="0.1"/>', "no <lanelet>"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_malformed_documents_raise_typed_errors(name: str) -> None:
    data, message = BROKEN[name]
    with pytest.raises(CommonRoadError, match=message) as info:
        parse_commonroad(data)
    assert isinstance(info.value, SimulatorError) and info.value.reason == "bad_commonroad_file"


def test_damaged_real_file_names_the_obstacle(scenario: CommonRoadScenario) -> None:
    text = US101.read_text()
    # Drop the first state's velocity of obstacle 373.
    head, tail = text.split('<dynamicObstacle id="373">', 1)
    tail = tail.replace("<velocity>\n        <exact>16.322</exact>\n      </velocity>", "", 1)
    with pytest.raises(CommonRoadError, match="dynamicObstacle 373: missing <velocity/exact>"):
        parse_commonroad(head + '<dynamicObstacle id="373">' + tail)
    swapped = text.replace("<exact>1</exact>", "<exact>0</exact>", 1)
    with pytest.raises(CommonRoadError, match="not strictly increasing"):
        parse_commonroad(swapped)
    with pytest.raises(CommonRoadError, match="cannot read"):
        load_commonroad(US101.with_name("missing.xml"))
