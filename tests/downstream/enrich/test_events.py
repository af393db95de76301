"""Events: triggers, hard brakes, cut-ins (real AV2 and NGSIM tracks) and out-of-distribution frames."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.enrich.corridor import path_coords
from downstream.enrich.errors import EnrichInputError
from downstream.enrich.events import (
    CutInRule,
    Event,
    anomalies,
    cut_ins,
    event_tags,
    hard_brakes,
    lead_vehicle,
    trigger_events,
)
from downstream.enrich.records import Detected, EgoStates, ScoredFrame, Tracks
from downstream.enrich.tags import TagSource
from shared.payloads import VehicleState, decode_small
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from simulator_harness.seeds.commonroad import load_commonroad
from tests.downstream.enrich import real_data as rd
from vehicle.replay.comma2k19 import load_segment, segment_messages

T = np.arange(0, 60, dtype=np.int64) * 100_000_000  # 6 s at 10 Hz


def straight_ego(speed: float = 10.0, accel: np.ndarray | None = None) -> EgoStates:
    a = np.zeros(T.size) if accel is None else accel
    x = speed * T / 1e9
    return EgoStates(T, np.full(T.size, speed), a, x.astype(np.float64), np.zeros(T.size), np.zeros(T.size))


def tracks(kind: str, x: np.ndarray, y: np.ndarray, yaw: float = 0.0) -> Tracks:
    shape = (1, T.size)
    return Tracks(("t1",), (kind,), T, x.reshape(shape), y.reshape(shape), np.full(shape, yaw), np.full(shape, 4.5),
                  np.full(shape, 1.8), np.ones(shape, bool))


def test_triggers_become_certain_events_and_tags() -> None:
    fired = [TriggerEvent(TriggerKind.SWERVE, 50, 0, 100, 50, TriggerSource.RULE, "swerve", {"lat_accel_mps2": 4.5}),
             TriggerEvent(TriggerKind.HARD_BRAKE, 10, 0, 100, 70, TriggerSource.RULE, "hb", {"decel_mps2": 6.1})]
    events = trigger_events(fired)
    assert [(e.kind, e.t_ns, e.confidence, e.score) for e in events] == [("hard_brake", 10, 1.0, 6.1),
                                                                         ("swerve", 50, 1.0, 4.5)]
    assert [t.encode() for t in event_tags(events)] == ["trigger:hard_brake", "trigger:swerve"]


def test_hard_brake_with_its_speed_peak_and_lead_vehicle() -> None:
    accel = np.zeros(T.size)
    accel[20:24] = [-4.5, -6.0, -5.0, -4.2]  # 0.3 s at or below -4 m/s²
    accel[40:42] = -7.0  # 0.1 s: too short
    lead = tracks("truck", np.full(T.size, 22.0), np.full(T.size, 0.4))
    (event,) = hard_brakes(straight_ego(8.6, accel), lead)
    assert event == Event("hard_brake", int(T[20]), TagSource.VEHICLE_STATE, 0.9, speed_mps=8.6, decel_mps2=6.0,
                          gap_m=22.0, agent="truck")
    (alone,) = hard_brakes(straight_ego(8.6, accel))
    assert alone.agent is None and alone.gap_m is None
    late = Tracks(lead.track_ids, lead.kinds, lead.t_ns + 5_000_000_000, lead.x_m, lead.y_m, lead.yaw_rad,
                  lead.length_m, lead.width_m, lead.valid)  # tracked only from 3 s after the brake
    assert hard_brakes(straight_ego(8.6, accel), late)[0].agent is None


def test_no_hard_brake_in_the_real_comma2k19_drive() -> None:
    """60 s on I-280 replayed as the vehicle records it (vehicle_state messages): its strongest
    deceleration stays below the 4 m/s² threshold."""
    msgs = [m for m in segment_messages(load_segment(rd.REAL / "comma2k19" / "seg40")) if m.topic == "vehicle_state"]
    ego = EgoStates.from_states([m.t_sensor_ns for m in msgs], [decode_small(m.payload, VehicleState) for m in msgs])
    assert ego.t_ns.size == len(msgs) > 4000 and ego.has_pose
    assert -4.0 < float(ego.accel_mps2.min()) < -0.5
    assert hard_brakes(ego) == ()


def test_a_synthetic_cut_in_from_the_left() -> None:
    y = np.where(T < 2e9, 3.5, np.clip(3.5 - 3.5 * (T - 2e9) / 2e9, 0.0, None))  # into the lane over 2 s
    (event,) = cut_ins(tracks("car", np.full(T.size, 15.0), y), straight_ego())
    assert (event.kind, event.agent, event.gap_m, event.confidence) == ("cut_in", "car:left", 15.0, 0.7)
    assert cut_ins(tracks("car", np.full(T.size, 15.0), np.full(T.size, 3.5)), straight_ego()) == ()  # stays beside
    assert cut_ins(tracks("person", np.full(T.size, 15.0), y), straight_ego()) == ()  # not a vehicle
    crossing = tracks("car", np.full(T.size, 15.0), y, yaw=np.pi / 2)  # crossing traffic, not merging
    assert cut_ins(crossing, straight_ego()) == ()
    quick = np.where(T < 2e9, 3.5, np.where(T < 2.3e9, 0.0, -3.5))  # through the lane in 0.3 s
    assert cut_ins(tracks("car", np.full(T.size, 15.0), quick), straight_ego()) == ()


def test_the_corridor_follows_a_curving_path() -> None:
    """On a circle of 50 m radius, a car driving 20 m ahead in the ego's lane sits off the ego's x axis
    but on its path: it leads, it never cuts in."""
    r, v = 50.0, 10.0
    theta = np.asarray(v * T / 1e9 / r, dtype=np.float64)
    ego = EgoStates(T, np.full(T.size, v), np.zeros(T.size), r * np.sin(theta), r * (1 - np.cos(theta)), theta)
    ahead = theta + 20.0 / r
    wx, wy = r * np.sin(ahead), r * (1 - np.cos(ahead))
    assert ego.x_m is not None and ego.y_m is not None
    dx, dy = wx - ego.x_m, wy - ego.y_m
    c, s = np.cos(theta), np.sin(theta)
    car = tracks("car", c * dx + s * dy, -s * dx + c * dy)
    assert float(np.abs(car.y_m).max()) > 3.5  # off the x axis by more than a lane
    pc = path_coords(car, ego)
    i = 20
    assert abs(pc.s_m[0, i] - 20.0) < 0.5 and abs(pc.d_m[0, i]) < 0.2
    lead = lead_vehicle(car, int(T[i]), ego)
    assert lead is not None and lead[0] == "car" and lead[1] == pytest.approx(pc.s_m[0, i])
    assert lead_vehicle(car, int(T[i])) is None  # the straight corridor misses it


def test_real_av2_bus_merging_ahead_is_the_one_cut_in() -> None:
    """Log adcf7d18: a bus 13-18 m ahead pulls in from the right (its offset from the ego's path falls
    from 3.2 m to 1.2 m over 4 s, checked by eye on a plot of the tracks); nothing else cuts in."""
    tr = rd.av2_tracks(rd.AV2_ADCF)
    ego = rd.av2_ego(rd.AV2_ADCF, tr.t_ns)
    (event,) = cut_ins(tr, ego)
    assert event.agent == "truck:right" and event.gap_m is not None and 13 < event.gap_m < 19
    pc, i = path_coords(tr, ego), tr.time_index(event.t_ns)
    there = [r for r in range(len(tr.kinds)) if abs(pc.s_m[r, i] - event.gap_m) < 0.5 and abs(pc.d_m[r, i]) < 1.6]
    assert [tr.kinds[r] for r in there] == ["BUS"]
    assert pc.d_m[there[0], i - 30] < -2.4  # 3 s earlier it was a lane to the right


def test_real_av2_turn_fakes_a_cut_in_only_on_the_straight_corridor() -> None:
    """Log 7fab2350 turns by 58°: on the x-axis corridor a car 32 m ahead appears to drift into the lane
    as the ego yaws; along the ego's path it keeps 1.7-2.3 m to the right, in its own lane."""
    tr = rd.av2_tracks(rd.AV2_7FAB)
    ego = rd.av2_ego(rd.AV2_7FAB, tr.t_ns)
    assert ego.yaw_rad is not None and np.degrees(ego.yaw_rad[-1] - ego.yaw_rad[0]) > 50
    assert len(cut_ins(tr)) == 1 and cut_ins(tr, ego) == ()


def lane_index(sc: object) -> np.ndarray:
    lane_of = {2: 0, 4: 0, 42: 1, 40: 1, 6: 2, 7: 2, 9: 3, 10: 3, 12: 4, 13: 4, 15: 5, 16: 5}
    tr = sc.trajectories  # type: ignore[attr-defined]
    out = np.full(tr.x_m.shape, -1)
    for la in sc.lanelets:  # type: ignore[attr-defined]
        poly = np.vstack([la.left_m, la.right_m[::-1]])
        x, y = np.nan_to_num(tr.x_m), np.nan_to_num(tr.y_m)
        inside = np.zeros(x.shape, bool)
        for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = ((y1 > y) != (y2 > y)) & (x < (x2 - x1) * (y - y1) / (y2 - y1) + x1)
            inside ^= cross
        out[inside & tr.valid] = lane_of[la.lanelet_id]
    return out


@pytest.mark.parametrize("ego_row", [17, 18, 19, 20, 21])
def test_real_ngsim_leads_match_the_lanelet_oracle_and_nobody_cuts_in(ego_row: int) -> None:
    """NGSIM US-101 with each fully recorded vehicle as the ego. Oracle: the lane each vehicle occupies
    by lanelet polygon, and the nearest vehicle ahead in the ego's lane along its heading."""
    sc = load_commonroad(rd.COMMONROAD_US101)
    tr = sc.trajectories
    lanes = lane_index(sc)
    ego, others = rd.ngsim_as_ego(ego_row)
    assert cut_ins(others, ego) == ()  # no recorded vehicle changes into the ego's lane (lane 0)
    assert set(lanes[ego_row]) == {0}
    checked = 0
    for k in range(0, tr.t_s.size, 10):
        ahead = [(float(np.cos(tr.yaw_rad[ego_row, k]) * (tr.x_m[r, k] - tr.x_m[ego_row, k])
                        + np.sin(tr.yaw_rad[ego_row, k]) * (tr.y_m[r, k] - tr.y_m[ego_row, k])), r)
                 for r in range(tr.n_agents) if r != ego_row and lanes[r, k] == 0]
        ahead = [(d, r) for d, r in ahead if 0 < d <= 60]
        found = lead_vehicle(others, int(others.t_ns[k]), ego)
        if not ahead:
            assert found is None
            continue
        assert found is not None and found[1] == pytest.approx(min(ahead)[0], abs=0.5)
        checked += 1
    assert checked >= 5


def test_anomaly_from_the_highest_ood_score() -> None:
    frames = [ScoredFrame(1, (), 2.0), ScoredFrame(2, (Detected("car", 0.9),), 4.5), ScoredFrame(3, (), None),
              ScoredFrame(4, (), 3.5)]
    (event,) = anomalies(frames)
    assert (event.kind, event.t_ns, event.score, event.confidence) == ("ood", 2, 4.5, 0.75)
    assert [t.encode() for t in event_tags([event])] == ["anomaly:ood"]
    assert anomalies(frames, threshold=5.0) == ()
    assert anomalies([ScoredFrame(1, (), None)]) == ()
    with pytest.raises(EnrichInputError):
        anomalies(frames, threshold=0.0)


def test_rules_and_records_check_their_inputs() -> None:
    with pytest.raises(EnrichInputError):
        CutInRule(lane_half_width_m=3.0, adjacent_min_m=2.0)
    with pytest.raises(EnrichInputError, match="strictly increasing"):
        EgoStates(np.array([0, 0]), np.zeros(2), np.zeros(2))
    with pytest.raises(EnrichInputError, match="together"):
        EgoStates(np.array([0, 1]), np.zeros(2), np.zeros(2), x_m=np.zeros(2))
    short = np.zeros((1, T.size - 1))
    with pytest.raises(EnrichInputError, match="expected"):
        Tracks(("t1",), ("car",), T, short, short, short, short, short, short.astype(bool))
    with pytest.raises(EnrichInputError, match="kinds"):
        z = np.zeros((1, T.size))
        Tracks(("t1",), (), T, z, z, z, z, z, np.ones((1, T.size), bool))
