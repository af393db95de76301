"""The demo drive: a pure, deterministic ego profile and the scene around it, as functions of time.

The ego cruises at ``cruise_speed_mps`` on a straight two-lane road (x along the road, y to the
left, z up, a local ENU frame with the origin where the drive starts), weaving gently inside its
lane as a lane-keeping controller would. A lead vehicle drives ahead in the same lane; it brakes
hard shortly before ``brake_at_s`` and the ego answers with a hard brake (jerk-limited onset, about
``brake_decel_mps2`` of deceleration, jerk-limited release) down to standstill.

Everything here is NumPy over arrays of time (seconds since the start of the drive); nothing
reads a clock or a file, so the same parameters always give the same drive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.errors import DriveParamsError
from simulator_harness.trajectory import Trajectory

FloatArray = npt.NDArray[np.float64]

#: Lane width (m); the ego drives the centre of the right lane (y = 0).
LANE_WIDTH_M = 3.7
#: Painted lines across the road: (y_m, dashed). Right edge, centre dashes, left edge.
LANE_LINES: tuple[tuple[float, bool], ...] = (
    (-LANE_WIDTH_M / 2, False), (LANE_WIDTH_M / 2, True), (1.5 * LANE_WIDTH_M, False),
)
#: Where the paved road ends on each side (m).
ROAD_EDGES_Y_M = (-LANE_WIDTH_M / 2 - 0.6, 1.5 * LANE_WIDTH_M + 0.6)
#: Centre-line dash pattern: ``DASH_M`` painted every ``DASH_PERIOD_M`` (m).
DASH_M, DASH_PERIOD_M = 3.0, 12.0


@dataclass(frozen=True, slots=True)
class DriveParams:
    """Parameters of the demo drive (SI units; times in seconds since the drive started)."""

    cruise_speed_mps: float = 15.0
    brake_at_s: float = 9.0
    brake_decel_mps2: float = 6.0
    brake_jerk_mps3: float = 15.0
    lead_gap_m: float = 30.0
    lead_brake_lead_s: float = 0.6
    weave_amplitude_m: float = 0.2
    weave_wavelength_m: float = 150.0
    wheelbase_m: float = 2.9
    steering_ratio: float = 15.0
    disengage_at_s: float | None = None

    def __post_init__(self) -> None:
        if self.cruise_speed_mps <= 0:
            raise DriveParamsError(f"cruise_speed_mps must be > 0, got {self.cruise_speed_mps}")
        if self.brake_decel_mps2 <= 0 or self.brake_jerk_mps3 <= 0:
            raise DriveParamsError("brake_decel_mps2 and brake_jerk_mps3 must be > 0")
        min_speed = self.brake_decel_mps2**2 / self.brake_jerk_mps3
        if self.cruise_speed_mps < min_speed:
            raise DriveParamsError(
                f"cruise_speed_mps {self.cruise_speed_mps} is too slow to reach the full "
                f"deceleration with jerk {self.brake_jerk_mps3}; it needs at least {min_speed:.2f}"
            )
        if self.brake_at_s < 0 or self.lead_brake_lead_s < 0:
            raise DriveParamsError("brake_at_s and lead_brake_lead_s must be >= 0")
        if self.lead_gap_m <= 5.0:
            raise DriveParamsError(f"lead_gap_m must be > 5 m (a car length), got {self.lead_gap_m}")
        if self.weave_wavelength_m <= 0 or self.wheelbase_m <= 0 or self.steering_ratio <= 0:
            raise DriveParamsError("weave_wavelength_m, wheelbase_m and steering_ratio must be > 0")


@dataclass(frozen=True, slots=True)
class Box:
    """An upright box in the world frame, aligned with the road: centre (m) and size (m)."""

    kind: str
    center_x_m: float
    center_y_m: float
    center_z_m: float
    length_m: float
    width_m: float
    height_m: float
    braking: bool = False


def longitudinal(
    t_s: npt.ArrayLike, speed0_mps: float, brake_at_s: float, decel_mps2: float, jerk_mps3: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Distance (m), speed (m/s) and acceleration (m/s²) of a cruise-then-brake-to-stop profile.

    The brake ramps in at ``jerk_mps3`` until ``-decel_mps2``, holds, and ramps out at the same
    jerk so that the speed reaches exactly zero with zero acceleration; it then stays stopped.
    """
    t = np.asarray(t_s, dtype=np.float64)
    v0, big_d, big_j = speed0_mps, decel_mps2, jerk_mps3
    tj = big_d / big_j
    v_release = big_d * tj / 2.0
    t_hold = (v0 - big_d * tj) / big_d
    s_b = v0 * brake_at_s
    s1 = s_b + v0 * tj - big_j * tj**3 / 6.0
    v1 = v0 - v_release
    s2 = s1 + v1 * t_hold - big_d * t_hold**2 / 2.0
    s_stop = s2 + v_release * tj - big_d * tj**2 / 2.0 + big_j * tj**3 / 6.0

    tau = t - brake_at_s
    t1 = np.clip(tau, 0.0, tj)
    t2 = np.clip(tau - tj, 0.0, t_hold)
    t3 = np.clip(tau - tj - t_hold, 0.0, tj)
    s = np.select(
        [tau < 0, tau < tj, tau < tj + t_hold, tau < 2 * tj + t_hold],
        [v0 * t, s_b + v0 * t1 - big_j * t1**3 / 6.0, s1 + v1 * t2 - big_d * t2**2 / 2.0,
         s2 + v_release * t3 - big_d * t3**2 / 2.0 + big_j * t3**3 / 6.0],
        default=s_stop,
    )
    v = np.select(
        [tau < 0, tau < tj, tau < tj + t_hold, tau < 2 * tj + t_hold],
        [np.full_like(t, v0), v0 - big_j * t1**2 / 2.0, v1 - big_d * t2,
         v_release - big_d * t3 + big_j * t3**2 / 2.0],
        default=0.0,
    )
    a = np.select(
        [tau < 0, tau < tj, tau < tj + t_hold, tau < 2 * tj + t_hold],
        [np.zeros_like(t), -big_j * t1, np.full_like(t, -big_d), -big_d + big_j * t3],
        default=0.0,
    )
    return s, np.maximum(v, 0.0), a


def ego_trajectory(params: DriveParams, t_s: npt.ArrayLike) -> Trajectory:
    """The ego alone (agent 0 of ``(1, n)`` arrays) at each of the ``n`` times in ``t_s`` (s since the
    drive started): pose in the local ENU frame, speed, longitudinal and lateral acceleration, yaw
    rate and steering wheel angle from the path's curvature, and whether autonomy is engaged."""
    t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
    s, v, a = longitudinal(t, params.cruise_speed_mps, params.brake_at_s,
                           params.brake_decel_mps2, params.brake_jerk_mps3)
    # The weave is a function of distance, so it freezes when the car stops. x equals the
    # distance travelled to within 1e-4 relative for the gentle weave of the demo.
    k = 2.0 * np.pi / params.weave_wavelength_m
    amp = params.weave_amplitude_m
    y = amp * np.sin(k * s)
    dy = amp * k * np.cos(k * s)
    d2y = -amp * k * k * np.sin(k * s)
    curvature = d2y / (1.0 + dy * dy) ** 1.5
    engaged = np.ones_like(t, dtype=np.bool_)
    if params.disengage_at_s is not None:
        engaged = t < params.disengage_at_s
    return Trajectory(
        t_s=t, x_m=s[None], y_m=y[None], yaw_rad=np.arctan(dy)[None], speed_mps=v[None], accel_mps2=a[None],
        valid=np.ones((1, t.size), dtype=bool), lat_accel_mps2=(v * v * curvature)[None],
        yaw_rate_radps=(v * curvature)[None],
        steering_rad=(params.steering_ratio * np.arctan(params.wheelbase_m * curvature))[None],
        autonomy_engaged=engaged[None],
    )


def lead_distance_m(params: DriveParams, t_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Centre x (m) and acceleration (m/s²) of the lead vehicle; it brakes first, as hard."""
    lead_brake_s = max(params.brake_at_s - params.lead_brake_lead_s, 0.0)
    s, _, a = longitudinal(t_s, params.cruise_speed_mps, lead_brake_s,
                           params.brake_decel_mps2, params.brake_jerk_mps3)
    return s + params.lead_gap_m, a


#: Objects that never move: parked cars on the right shoulder and sign posts beside the road.
STATIC_BOXES: tuple[Box, ...] = (
    *(Box("parked_car", x, -3.4, 0.75, 4.5, 1.9, 1.5) for x in (48.0, 112.0, 176.0, 240.0)),
    *(Box("post", float(x), -4.6, 1.25, 0.25, 0.25, 2.5) for x in np.arange(20.0, 400.0, 30.0)),
    *(Box("post", float(x), 7.0, 1.25, 0.25, 0.25, 2.5) for x in np.arange(35.0, 400.0, 45.0)),
)


def scene_at(params: DriveParams, t_s: float) -> tuple[Box, ...]:
    """Every box in the world at ``t_s``: the lead vehicle first, then the static objects."""
    lead_x, lead_a = lead_distance_m(params, t_s)
    lead = Box("lead_vehicle", float(lead_x[()]), 0.0, 0.75, 4.6, 1.9, 1.5,
               braking=bool(lead_a[()] < -0.5))
    return (lead, *STATIC_BOXES)


def stop_time_s(params: DriveParams) -> float:
    """When the ego comes to rest (s since the drive started)."""
    tj = params.brake_decel_mps2 / params.brake_jerk_mps3
    return params.brake_at_s + params.cruise_speed_mps / params.brake_decel_mps2 + tj
