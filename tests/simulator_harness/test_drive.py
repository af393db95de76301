"""The demo drive profile: cruise, jerk-limited hard brake at the right time, standstill."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from shared.config import ConfigError, build
from simulator_harness.drive import (
    DriveParams,
    ego_trajectory,
    lead_distance_m,
    scene_at,
    stop_time_s,
)
from simulator_harness.errors import DriveParamsError
from simulator_harness.trajectory import EGO, Trajectory

DT_S = 0.001
T_S = np.arange(0.0, 14.0, DT_S)
_G = TypeVar("_G", bound=np.generic)

def ego(series: npt.NDArray[_G] | None) -> npt.NDArray[_G]:
    """The ego's row of a drive trajectory field ``(1, n)``."""
    assert series is not None
    return series[EGO]


@pytest.fixture(scope="module")
def traj() -> Trajectory:
    return ego_trajectory(DriveParams(), T_S)


def test_cruises_at_15_mps_until_the_brake(traj: Trajectory) -> None:
    before = T_S < 9.0
    np.testing.assert_allclose(ego(traj.speed_mps)[before], 15.0)
    assert np.all(ego(traj.accel_mps2)[before] == 0.0)


def test_brake_onset_is_at_brake_at_s_and_jerk_limited() -> None:
    params = DriveParams(brake_at_s=5.0)
    tr = ego_trajectory(params, T_S)
    onset = T_S[np.argmax(ego(tr.accel_mps2) < 0.0)]
    assert onset == pytest.approx(5.0, abs=2 * DT_S)
    jerk = np.abs(np.diff(ego(tr.accel_mps2))) / DT_S
    assert jerk.max() <= params.brake_jerk_mps3 * 1.01
    # The ramp takes decel / jerk = 0.4 s, so the full deceleration is reached at 5.4 s.
    full = T_S[np.argmax(ego(tr.accel_mps2) <= -params.brake_decel_mps2 + 1e-9)]
    assert full == pytest.approx(5.4, abs=2 * DT_S)


def test_hard_brake_magnitude_and_duration(traj: Trajectory) -> None:
    assert ego(traj.accel_mps2).min() == pytest.approx(-6.0, abs=1e-9)
    # The vehicle's hard_brake rule (<= -4 m/s² for 0.2 s) must see a long, clean episode.
    below = ego(traj.accel_mps2) <= -4.0
    assert below.sum() * DT_S > 1.5
    first = T_S[np.argmax(below)]
    assert first == pytest.approx(9.0 + 4.0 / 15.0, abs=2 * DT_S)


def test_speed_never_negative_and_the_car_stays_stopped(traj: Trajectory) -> None:
    params = DriveParams()
    assert ego(traj.speed_mps).min() >= 0.0
    stopped = stop_time_s(params) <= T_S
    assert stopped.any()
    assert np.all(ego(traj.speed_mps)[stopped] == 0.0)
    assert np.all(ego(traj.accel_mps2)[stopped] == 0.0)
    assert np.ptp(ego(traj.x_m)[stopped]) == 0.0
    # Just before the stop the car is still rolling: it did not stop early.
    assert ego(traj.speed_mps)[stop_time_s(params) - 0.2 > T_S].min() > 0.0


def test_kinematics_are_consistent(traj: Trajectory) -> None:
    np.testing.assert_allclose(np.gradient(ego(traj.x_m), DT_S), ego(traj.speed_mps), atol=0.01)
    np.testing.assert_allclose(np.gradient(ego(traj.speed_mps), DT_S), ego(traj.accel_mps2), atol=0.02)
    assert np.all(np.diff(ego(traj.x_m)) >= 0.0)


def test_lane_keeping_is_gentle(traj: Trajectory) -> None:
    params = DriveParams()
    assert np.abs(ego(traj.y_m)).max() <= params.weave_amplitude_m + 1e-12
    assert np.abs(ego(traj.y_m)).max() > 0.5 * params.weave_amplitude_m
    assert np.abs(ego(traj.lat_accel_mps2)).max() < 0.2
    assert np.abs(ego(traj.yaw_rad)).max() < 0.02
    np.testing.assert_allclose(ego(traj.lat_accel_mps2), ego(traj.speed_mps) * ego(traj.yaw_rate_radps),
                               atol=1e-12)
    moving = ego(traj.speed_mps) > 0.1  # standing still, the wheel stays turned but nothing yaws
    assert np.all(np.sign(ego(traj.steering_rad)[moving]) == np.sign(ego(traj.yaw_rate_radps)[moving]))


def test_lead_vehicle_brakes_first_and_is_never_hit(traj: Trajectory) -> None:
    params = DriveParams()
    lead_x, lead_a = lead_distance_m(params, T_S)
    assert T_S[np.argmax(lead_a < 0)] == pytest.approx(params.brake_at_s - params.lead_brake_lead_s,
                                                        abs=2 * DT_S)
    lead_rear = lead_x - 4.6 / 2
    assert (lead_rear - ego(traj.x_m)).min() > 10.0
    assert scene_at(params, 8.9)[0].braking
    assert not scene_at(params, 5.0)[0].braking
    assert scene_at(params, 5.0)[0].center_x_m == pytest.approx(ego(traj.x_m)[5000] + params.lead_gap_m)


def test_profile_is_deterministic_and_scalar_matches_array(traj: Trajectory) -> None:
    again = ego_trajectory(DriveParams(), T_S)
    assert np.array_equal(ego(again.x_m), ego(traj.x_m))
    assert np.array_equal(ego(again.speed_mps), ego(traj.speed_mps))
    one = ego_trajectory(DriveParams(), 9.2)
    i = round(9.2 / DT_S)
    assert ego(one.accel_mps2)[0] == pytest.approx(ego(traj.accel_mps2)[i])
    assert ego(one.x_m)[0] == pytest.approx(ego(traj.x_m)[i])


def test_disengagement_flag() -> None:
    tr = ego_trajectory(DriveParams(disengage_at_s=3.0), [2.9, 3.1])
    assert ego(tr.autonomy_engaged).tolist() == [True, False]


def test_bad_parameters_name_the_problem() -> None:
    with pytest.raises(DriveParamsError, match=r"cruise_speed_mps .* too slow"):
        DriveParams(cruise_speed_mps=1.0)
    with pytest.raises(ConfigError, match=r"\[drive\].*brake_decel_mps2"):
        build(DriveParams, {"brake_decel_mps2": -1.0}, "sim.toml", "drive.")
