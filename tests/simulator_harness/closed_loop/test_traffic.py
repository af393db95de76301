"""Closed-loop behaviour: IDM free flow, MOBIL, events, signals and batching."""

from __future__ import annotations

import numpy as np

from simulator_harness.assessment.outcomes import get, pairwise_collisions
from simulator_harness.closed_loop import BlindEgo, IDMEgo, build_batch, free_flow_spec, rollout, simulate
from simulator_harness.scenario import (
    Actor,
    ActorKind,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    RoadType,
    ScenarioSpec,
)
from simulator_harness.trajectory import EGO


def test_free_flow_has_no_collisions_over_many_seeded_scenarios() -> None:
    rng = np.random.default_rng(2024)
    road = RoadSpec(lanes=3, length_m=800.0)
    specs = [free_flow_spec(road, 24, rng, name=f"ff{i}", duration_s=30.0) for i in range(40)]
    traj, _ = simulate(specs, IDMEgo())
    assert traj.shape == (40, 25, 301)
    assert int(pairwise_collisions(traj).sum()) == 0
    assert traj.lane is not None  # the closed loop records the lane frame
    changes = int((np.diff(traj.lane, axis=2) != 0).sum())
    assert changes > 0  # the traffic is not frozen into its lanes
    assert traj.speed_mps.min() >= 0.0


def blocked(intent: Intent) -> ScenarioSpec:
    return ScenarioSpec(
        name="blocked", ego=EgoSpec(lane=2, s_m=0.0, speed_mps=20.0), duration_s=15.0,
        actors=(Actor("slow", lane=0, s_m=120.0, speed_mps=10.0, intent=Intent.KEEP_LANE, desired_speed_mps=10.0),
                Actor("fast", lane=0, s_m=60.0, speed_mps=20.0, intent=intent, desired_speed_mps=25.0)))


def test_mobil_overtakes_a_slow_lead_and_keep_lane_does_not() -> None:
    traj, _ = simulate([blocked(Intent.CRUISE), blocked(Intent.KEEP_LANE)], IDMEgo())
    fast, slow = 2, 1
    assert traj.lane is not None
    assert traj.lane[0, fast, -1] == 1  # moved out of the blocked lane
    assert traj.x_m[0, fast, -1] > traj.x_m[0, slow, -1] + 20  # and passed
    assert set(np.unique(traj.lane[1, fast])) == {0}
    assert traj.x_m[1, fast, -1] < traj.x_m[1, slow, -1]  # stuck behind
    assert traj.speed_mps[1, fast, -1] < 11.0
    assert int(pairwise_collisions(traj).sum()) == 0


def cut_in(t_s: float = 1.0) -> ScenarioSpec:
    return ScenarioSpec(
        name="cut", ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0),
        actors=(Actor("agent_3", lane=1, s_m=68.0, speed_mps=16.0, intent=Intent.KEEP_LANE,
                      desired_speed_mps=16.0),),
        events=(Event(EventKind.CUT_IN, "agent_3", t_s),))


def test_cut_in_makes_the_idm_ego_brake_and_the_blind_ego_crash() -> None:
    spec = cut_in()
    careful, params = simulate([spec], IDMEgo())
    blind, _ = simulate([spec], BlindEgo())
    assert careful.lane is not None
    assert careful.lane[0, 1, 0] == 1 and careful.lane[0, 1, -1] == 0  # the cut-in happened
    before = careful.t_s < 1.0
    assert careful.accel_mps2[0, EGO, before].min() > -0.5
    assert careful.accel_mps2[0, EGO].min() < -3.0
    assert get("collision")(careful, params.road).value[0] == 0.0
    assert get("collision")(blind, params.road).value[0] == 1.0


def test_events_fire_at_their_time_in_a_batch() -> None:
    traj, _ = simulate([cut_in(1.0), cut_in(3.0)], IDMEgo())
    assert traj.lane is not None
    first = [float(traj.t_s[np.argmax(traj.lane[i, 1] == 0)]) for i in range(2)]
    assert first == [1.1, 3.1]  # fired at t, visible in the state after that step


def test_lead_hard_brake_is_jerk_limited_and_agents_react_to_the_ego() -> None:
    spec = ScenarioSpec(
        name="brake", ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0),
        actors=(Actor("lead", lane=0, s_m=90.0, speed_mps=20.0, intent=Intent.KEEP_LANE, desired_speed_mps=20.0),
                Actor("tail", lane=0, s_m=10.0, speed_mps=20.0, intent=Intent.KEEP_LANE, desired_speed_mps=20.0)),
        events=(Event(EventKind.LEAD_HARD_BRAKE, "lead", 2.0, {"decel_mps2": 6.0, "jerk_mps3": 15.0}),))
    traj, _ = simulate([spec], IDMEgo())
    lead = traj.accel_mps2[0, 1]
    assert lead.min() < -5.9
    assert np.abs(np.diff(lead[traj.speed_mps[0, 1] > 0.5])).max() <= 1.5 + 1e-9  # 15 m/s³ at 10 Hz
    assert traj.accel_mps2[0, 2].min() < -2.0  # the car behind the ego brakes because the ego did
    assert int(pairwise_collisions(traj).sum()) == 0


def intersection(runner: bool, main_green_s: float) -> ScenarioSpec:
    road = RoadSpec(kind=RoadType.INTERSECTION, lanes=2, cross_lanes=1, length_m=400.0,
                    signal_cycle_s=40.0, main_green_s=main_green_s)
    events = (Event(EventKind.RED_LIGHT_RUNNER, "cross", 0.0, {"speed_mps": 12.0}),) if runner else ()
    return ScenarioSpec(
        name="junction", road=road, duration_s=14.0, events=events,
        ego=EgoSpec(lane=0, s_m=120.0, speed_mps=12.0, desired_speed_mps=12.0),
        actors=(Actor("cross", lane=2, s_m=40.0, speed_mps=10.0, intent=Intent.KEEP_LANE,
                      desired_speed_mps=10.0),))


def test_crossing_traffic_waits_at_red_and_a_runner_goes_through() -> None:
    traj, params = simulate([intersection(False, 36.0), intersection(True, 36.0)], IDMEgo())
    stop_cross = params.road.stop_line_s_m[2]
    assert traj.s_m is not None
    front = traj.s_m[:, 1] + 2.3
    assert front[0].max() <= stop_cross + 0.5
    assert traj.speed_mps[0, 1, -1] < 0.5
    assert front[1].max() > stop_cross + 20


def test_blind_ego_runs_the_red_light_and_idm_ego_stops() -> None:
    specs = [intersection(False, 4.0)]
    blind, params = simulate(specs, BlindEgo())
    careful, _ = simulate(specs, IDMEgo())
    assert get("red_light")(blind, params.road).value[0] == 1.0
    assert get("red_light")(careful, params.road).value[0] == 0.0
    assert careful.speed_mps[0, EGO, -1] < 0.5


def test_idm_ego_slows_for_a_crossing_pedestrian() -> None:
    walker = ScenarioSpec(
        name="walk", ego=EgoSpec(lane=0, s_m=40.0, speed_mps=12.0, desired_speed_mps=12.0),
        actors=(Actor("p", kind=ActorKind.PEDESTRIAN, lane=0, s_m=110.0, d_m=-2.5, intent=Intent.CROSS),))
    careful, params = simulate([walker], IDMEgo())
    assert careful.speed_mps[0, EGO].min() < 10.0
    assert get("collision")(careful, params.road).value[0] == 0.0
    assert careful.y_m[0, 1, -1] > 5.0  # the pedestrian walked across


def test_rollout_records_initial_state() -> None:
    state, params = build_batch([cut_in()])
    traj = rollout(state, params, BlindEgo(), 5)
    assert traj.shape[2] == 6 and traj.x_m[0, EGO, 0] == 50.0
    assert np.allclose(np.diff(traj.x_m[0, EGO]), 2.0)
