"""Real seeds: the NGSIM US-101 CommonRoad recording as a closed-loop spec, gated and exported."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from simulator_harness.assessment import outcomes as metrics
from simulator_harness.assessment.plausibility import check
from simulator_harness.closed_loop import IDMEgo, simulate
from simulator_harness.errors import CommonRoadError, ScenarioExportError
from simulator_harness.generation.perturb import perturb_count
from simulator_harness.scenario import Actor, ActorKind, Intent, ScenarioSpec, apply, loads_toml
from simulator_harness.scenario.io import dumps_toml
from simulator_harness.seeds.commonroad import CommonRoadScenario, Lanelet, load_commonroad
from simulator_harness.seeds.convert import lane_numbers, recorded_tracks, seed_from_commonroad, spec_to_xosc
from simulator_harness.seeds.openscenario import to_xosc

US101 = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"


@pytest.fixture(scope="module")
def recording() -> CommonRoadScenario:
    return load_commonroad(US101)


def test_lanes_follow_the_lanelet_graph(recording: CommonRoadScenario) -> None:
    lanes = lane_numbers(recording.lanelets)
    # Lanelet 2 has no left neighbour (leftmost), 16 no right one; successors keep their lane.
    assert lanes[16] == 0 and lanes[2] == 5 and max(lanes.values()) == 5
    assert lanes[15] == lanes[16] and lanes[2] == lanes[4] and lanes[42] == lanes[2] - 1


def test_contradicting_graph_is_a_typed_error() -> None:
    pts = np.array([[0.0, 0.0], [10.0, 0.0]])
    up = np.array([0.0, 1.75])
    a = Lanelet(1, pts + 2 * up, pts, pts + up, (), (2,), None, 2, "solid", "solid")
    b = Lanelet(2, pts, pts - 2 * up, pts - up, (1,), (), None, None, "solid", "solid")
    with pytest.raises(CommonRoadError, match="reached as lane"):
        lane_numbers((a, b))


def test_ngsim_seed_matches_the_recording(recording: CommonRoadScenario) -> None:
    seed = seed_from_commonroad(recording)
    spec = seed.spec
    assert spec.road.lanes == 6 and spec.road.lane_width_m == pytest.approx(3.5, abs=0.1)
    assert len(spec.actors) + 1 + len(seed.skipped_obstacle_ids) == recording.trajectories.n_agents
    assert spec.duration_s == pytest.approx(10.0)
    assert seed.ego_obstacle_id == 475  # a full-length track, the most upstream of them
    tr = recording.trajectories
    assert tr.agent_id is not None
    row = list(tr.agent_id).index(475)
    assert spec.ego.speed_mps == pytest.approx(tr.speed_mps[row, 0], abs=1e-3)
    # The 10.5 m NGSIM vehicle is a truck; the slow leftmost lane (the jam) holds the crawlers.
    assert [a.name for a in spec.actors if a.kind is ActorKind.TRUCK] == ["obstacle_387"]
    slow = {a.name for a in spec.actors if a.lane == 5}
    assert {"obstacle_422", "obstacle_427", "obstacle_442"} <= slow
    # Positions along the road agree with the recording's spacing (straightened road, < 2 % error).
    a373 = next(a for a in spec.actors if a.name == "obstacle_373")
    r373 = list(tr.agent_id).index(373)
    gap = np.hypot(tr.x_m[r373, 0] - tr.x_m[row, 0], tr.y_m[r373, 0] - tr.y_m[row, 0])
    assert abs((a373.s_m - spec.ego.s_m) - gap) < 0.02 * gap + 1.0
    assert loads_toml(dumps_toml(spec)) == spec  # a seed is an ordinary, savable spec


def test_ngsim_seed_runs_closed_loop_and_passes_its_own_gate(recording: CommonRoadScenario) -> None:
    spec = seed_from_commonroad(recording).spec
    traj, params = simulate([spec], IDMEgo())
    verdict = check(traj, params, [spec])[0]
    assert verdict.passed, verdict.reasons
    assert metrics.get("collision")(traj, params.road).value[0] == 0.0
    assert traj.valid[0, 0].all()  # the extended road keeps the ego on it for the whole recording
    # Perturbing the real seed (extra background traffic) goes through the same gate.
    samples = perturb_count(spec, 2, np.random.default_rng(3), mean_extra=1.0)
    assert len(samples) == 2 and all(len(s.actors) >= len(spec.actors) for s, _, _ in samples)


def test_ngsim_seed_exports_to_openscenario(recording: CommonRoadScenario) -> None:
    spec = seed_from_commonroad(recording).spec
    root = to_xosc(spec_to_xosc(spec)).getroot()
    assert root is not None
    names = [o.get("name") for o in root.iter("ScenarioObject")]
    assert names[0] == "ego" and len(names) == 1 + len(spec.actors)
    lanes = {int(p.get("laneId", "0")) for p in root.iter("LanePosition")}
    assert lanes <= set(range(-6, 0)) and -1 in lanes  # leftmost lane (our 5) is OpenDRIVE -1
    assert len(list(root.iter("TeleportAction"))) == len(names)
    assert ET.tostring(root).startswith(b"<OpenSCENARIO>")


def test_export_refuses_a_pedestrian() -> None:
    spec = ScenarioSpec("walker", actors=(Actor("ped", ActorKind.PEDESTRIAN, 0, 80.0, 0.0, Intent.WAIT),))
    with pytest.raises(ScenarioExportError, match="'ped'"):
        spec_to_xosc(spec)


def test_seed_varies_the_ego_speed_and_its_recorded_lead(recording: CommonRoadScenario) -> None:
    spec = seed_from_commonroad(recording).spec
    ahead = sorted((a for a in spec.actors if a.lane == spec.ego.lane and a.s_m > spec.ego.s_m), key=lambda a: a.s_m)
    lead = ahead[0]
    ranges = {v.key: (v.low, v.high) for v in spec.variations}
    assert set(ranges) == {"ego.speed_mps", f"actors.{lead.name}.speed_mps", f"actors.{lead.name}.s_m"}
    lo, hi = ranges["ego.speed_mps"]
    assert lo == pytest.approx(0.75 * spec.ego.speed_mps, abs=1e-3) and hi == pytest.approx(1.25 * spec.ego.speed_mps,
                                                                                             abs=1e-3)
    lo, hi = ranges[f"actors.{lead.name}.s_m"]
    assert lo < lead.s_m < hi and lo - spec.ego.s_m >= 12.0 and hi < ahead[1].s_m - 12.0
    # Every corner of the ranges still simulates (no bodies overlapping at t = 0) and passes the gate.
    corners = [apply(spec, {k: r[i] for k, r in ranges.items()}) for i in (0, 1)]
    traj, params = simulate(corners, IDMEgo())
    assert all(v.passed for v in check(traj, params, corners))
    assert seed_from_commonroad(recording, spread=0.0).spec.variations == ()


def test_ego_can_be_chosen_and_bad_choices_are_named(recording: CommonRoadScenario) -> None:
    seed = seed_from_commonroad(recording, ego_obstacle_id=373)
    tr = recording.trajectories
    assert tr.agent_id is not None
    row = list(tr.agent_id).index(373)
    assert seed.ego_obstacle_id == 373 and seed.spec.ego.speed_mps == pytest.approx(tr.speed_mps[row, 0], abs=1e-3)
    assert "obstacle_373" not in {a.name for a in seed.spec.actors} and "obstacle_475" in {a.name for a in
                                                                                           seed.spec.actors}
    with pytest.raises(CommonRoadError, match="obstacle 9999 cannot be the ego: no such obstacle"):
        seed_from_commonroad(recording, ego_obstacle_id=9999)
    truck = seed_from_commonroad(recording, ego_obstacle_id=387)  # the 10.5 m NGSIM vehicle
    assert any("the ego is a recorded truck" in w for w in truck.warnings)


def test_recorded_tracks_carry_simulator_kinds(recording: CommonRoadScenario) -> None:
    tracks = recorded_tracks(recording)
    assert tracks.kind is not None and tracks.agent_id is not None
    assert tracks.n_agents == 22 and set(tracks.kind.tolist()) == {"car", "truck"}
    assert tracks.agent_id[tracks.kind == "truck"].tolist() == [387]
