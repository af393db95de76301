"""The plausibility gate: impossible scenarios fail with the right reason, normal ones pass,
and real human driving (comma2k19, the NGSIM tracks of the CommonRoad US-101 file) sits within the
human bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator_harness.assessment.plausibility import (
    PlausibilityParams,
    check,
    check_recorded,
    human_bound_violations,
)
from simulator_harness.closed_loop import IDMEgo, simulate
from simulator_harness.scenario import (
    Actor,
    ActorKind,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    ScenarioSpec,
)
from simulator_harness.seeds import load_commonroad, recorded_tracks, seed_from_commonroad

COMMA = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "comma2k19" / "seg40" / "processed_log"
US101 = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"
EGO = EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0)


def lead_brake(decel: float, jerk: float = 15.0) -> ScenarioSpec:
    return ScenarioSpec(
        name=f"brake_{decel:g}", ego=EGO,
        actors=(Actor("lead", lane=0, s_m=90.0, speed_mps=20.0, intent=Intent.KEEP_LANE, desired_speed_mps=20.0),),
        events=(Event(EventKind.LEAD_HARD_BRAKE, "lead", 2.0, {"decel_mps2": decel, "jerk_mps3": jerk}),))


def walker(speed: float) -> ScenarioSpec:
    return ScenarioSpec(
        name=f"walk_{speed:g}", ego=EGO,
        actors=(Actor("p", kind=ActorKind.PEDESTRIAN, lane=0, s_m=150.0, d_m=-3.0, intent=Intent.WAIT),),
        events=(Event(EventKind.JAYWALK, "p", 1.0, {"speed_mps": speed}),))


def test_normal_scenarios_pass_and_impossible_ones_fail_with_the_reason() -> None:
    specs = [lead_brake(6.0), lead_brake(14.0), lead_brake(6.0, jerk=80.0), walker(1.4), walker(9.0)]
    traj, params = simulate(specs, IDMEgo())
    verdicts = check(traj, params, specs)
    assert verdicts[0].passed and verdicts[0].reasons == ()
    assert verdicts[3].passed
    assert not verdicts[1].passed
    assert "kinematics: lead |accel| 14.0 m/s² > 10.4" in verdicts[1].reasons
    assert not verdicts[2].passed
    # 80 m/s³ allowed, but 6 m/s² is reached within one 0.1 s step: 60 m/s³.
    assert "kinematics: lead |jerk| 60.0 m/s³ > 20.0" in verdicts[2].reasons
    assert not any("accel" in r for r in verdicts[2].reasons)
    assert verdicts[4].reasons == ("human bounds: p P99 speed 9.0 m/s > 3.5",)


def cut_in(gap_m: float, lanes: int, omega: float) -> ScenarioSpec:
    return ScenarioSpec(
        name=f"cut_{gap_m:g}", road=RoadSpec(lanes=lanes), ego=EgoSpec(lane=0, s_m=40.0, speed_mps=20.0),
        actors=(Actor("a", lane=1, s_m=40.0 + 4.6 + gap_m, speed_mps=12.0, intent=Intent.KEEP_LANE,
                      desired_speed_mps=12.0),),
        events=(Event(EventKind.CUT_IN, "a", 1.0, {"lateral_omega_radps": omega, "lateral_accel_mps2": 6.0}),))


def test_unavoidable_cut_in_is_rejected_and_a_distant_one_passes() -> None:
    specs = [cut_in(13.4, 2, 4.0), cut_in(60.0, 2, 1.5)]
    traj, params = simulate(specs, IDMEgo())
    close, far = check(traj, params, specs)
    assert not close.passed
    assert len(close.reasons) == 1 and close.reasons[0].startswith("unavoidable: cut_in by a at t=1.0 s")
    assert far.passed, far.reasons


def test_curvature_bound_uses_the_inverse_bicycle_model() -> None:
    # A cut-in at walking pace with a violent lateral move: the path bends far beyond 0.3 1/m.
    spec = ScenarioSpec(
        name="crab", ego=EgoSpec(lane=0, s_m=10.0, speed_mps=5.0, desired_speed_mps=5.0),
        actors=(Actor("a", lane=1, s_m=80.0, speed_mps=3.0, intent=Intent.KEEP_LANE, desired_speed_mps=3.0),),
        events=(Event(EventKind.CUT_IN, "a", 1.0, {"lateral_omega_radps": 6.0, "lateral_accel_mps2": 9.0}),))
    traj, params = simulate([spec], IDMEgo())
    (verdict,) = check(traj, params, [spec])
    assert any(r.startswith("kinematics: a curvature") and "steering" in r for r in verdict.reasons)


def comma_series() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.load(COMMA / "CAN" / "speed" / "t")
    v = np.load(COMMA / "CAN" / "speed" / "value")[:, 0]
    grid = np.arange(t[0], t[-1], 0.1)
    speed = np.interp(grid, t, v)
    accel = np.gradient(speed, 0.1)
    return speed, accel, np.gradient(accel, 0.1)


def test_real_human_driving_is_within_human_bounds() -> None:
    speed, accel, jerk = comma_series()
    assert speed.size > 400 and speed.max() > 5.0  # a real minute of driving, not an empty file
    p = PlausibilityParams()
    assert human_bound_violations(accel, jerk, speed, 1.5 * 30.0, p, "comma2k19") == []
    # The same drive with its dynamics sped up fourfold is no longer human.
    fast = human_bound_violations(accel * 4 * 4, jerk * 4 * 4 * 4, speed, 45.0, p, "comma2k19 x4")
    assert any("|accel|" in r for r in fast) and any("|jerk|" in r for r in fast)


@pytest.mark.parametrize("speed", [1.4, 2.5])
def test_occluded_step_out_counts_visibility_from_the_kerb(speed: float) -> None:
    spec = ScenarioSpec(
        name="occluded", ego=EgoSpec(lane=0, s_m=20.0, speed_mps=15.0, desired_speed_mps=15.0),
        actors=(Actor("kid", kind=ActorKind.PEDESTRIAN, lane=0, s_m=70.0, d_m=-3.0, intent=Intent.WAIT),
                Actor("van", kind=ActorKind.TRUCK, lane=0, s_m=60.0, d_m=-3.0, intent=Intent.PARKED)),
        events=(Event(EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT, "kid", 1.5, {"speed_mps": speed}),))
    traj, params = simulate([spec], IDMEgo())
    assert traj.y_m[0, 2].tolist() == [-3.0] * traj.shape[2]  # the parked van stays at the kerb
    (verdict,) = check(traj, params, [spec])
    # Visible only once on the road: the ego (held at 15 m/s) is then within a few metres.
    assert not verdict.passed and verdict.reasons[0].startswith("unavoidable: occluded_pedestrian_step_out")


def test_real_ngsim_tracks_pass_the_bounds_the_gate_applies_once_smoothed() -> None:
    cr = load_commonroad(US101)
    tracks = recorded_tracks(cr)
    limit = seed_from_commonroad(cr).spec.road.speed_limit_mps
    p = PlausibilityParams()  # the gate's own bounds, as check() applies them to simulated road users
    smoothed = check_recorded(tracks, limit, p)
    assert len(smoothed) == 22
    assert all(v.passed for v in smoothed), [v.reasons for v in smoothed if not v.passed]
    # Plain differencing of the file's noisy accelerations: 17 of the 22 drivers look inhuman.
    raw = check_recorded(tracks, limit, p, half_window_s=None)
    assert sum(any(r.startswith("human bounds") and "|jerk|" in r for r in v.reasons) for v in raw) == 17


def test_the_gate_judges_a_recorded_track_with_the_checks_it_uses_on_generated_ones() -> None:
    specs = [lead_brake(14.0), lead_brake(6.0, jerk=80.0)]
    traj, params = simulate(specs, IDMEgo())
    verdicts = check(traj, params, specs)
    for i, spec in enumerate(specs):
        lead = traj.scenario(i).agents([1])  # the generated lead as if it were a recording
        gate = sorted(r for r in verdicts[i].reasons if " lead " in r)
        assert gate, verdicts[i].reasons
        (raw,) = check_recorded(lead, spec.road.speed_limit_mps, half_window_s=None)
        assert sorted(r.replace("agent 0", "lead") for r in raw.reasons) == gate
        (smoothed,) = check_recorded(lead, spec.road.speed_limit_mps)
        if i == 0:  # smoothing as a recording does not make a 14 m/s² brake human
            assert any("|accel| 1" in r for r in smoothed.reasons), smoothed.reasons
        else:  # but it does spread a 0.1 s jerk step over its 1 s window: generated tracks are never smoothed
            assert smoothed.passed, smoothed.reasons
