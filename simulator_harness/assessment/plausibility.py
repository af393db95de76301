"""Plausibility gate: hard pass/fail, with reasons, for each simulated scenario.

A scenario is kept only if it could happen and the ego could have done something about it:

* **kinematic feasibility** (every vehicle): ``|a| <= 10.4 m/s²`` (longitudinal and lateral
  combined), ``|jerk| <= jerk_max_mps3`` while moving, and path curvature ``|κ| <= 0.3 1/m`` with
  ``κ = yaw_rate / v`` (the inverse bicycle model gives the steering angle ``atan(κ · wheelbase)``);
* **avoidability**: when a scheduled threat becomes visible (the event time, or for an occluded
  pedestrian the first step its body is on the road), an ego that had held its speed until the
  threat entered its corridor still had an escape: braking within ``brake_max_mps2`` after a
  reaction time, or a lateral move of ``lat_escape_accel_mps2`` into an existing neighbour lane;
* **human bounds** for the other road users: P99 of acceleration and jerk, and speed, by kind.

The human bounds are checked against real humans by :func:`check_recorded`, which sends recorded
tracks through the same per-road-user checks. Recorded positions are noisy, and plain differencing
turns that noise into jerk: on the 22 NGSIM US-101 tracks of the CommonRoad file
``USA_US101-4_1_T-1`` (0.1 s steps, 8 to 101 samples each), differencing the file's own
accelerations gives a per-track P99 |jerk| of 20.4 m/s³ at the median track and up to 52.9, so 17
of the 22 exceed 15.5 m/s³ (and 15 exceed the 20 m/s³ kinematic maximum). A simulated track has no
such noise; a recorded one is smoothed first, as a trajectory pipeline would
(:mod:`~simulator_harness.assessment.smoothing`: local-linear fits over ±0.5 s on the positions,
then on the speed). Smoothed, all 22 pass every bound, with room: per-track P99 |accel| at most
4.0 m/s² (bound 8.0), P99 |jerk| at most 9.0 m/s³ (median 2.6; bound 15.5), max |jerk| 9.2 (20),
max curvature 0.053 1/m (0.3). Narrower windows leave noise: over ±0.25 s, 6 tracks still fail
with a P99 |accel| up to 9.8 m/s², nearly three times the 3.4 m/s² the file's own acceleration
column never exceeds (NGSIM clips it at 11.2 ft/s²). The bounds are kept,
not tightened to these maxima: ten seconds of a traffic jam hold no emergency stop, so they show
the bounds do not reject ordinary human driving, not that they are tight. Smoothing has a cost: it
spreads a jerk step over its window (a simulated lead braking at 6 m/s² within 0.1 s, 60 m/s³,
reads 6.5 m/s³ smoothed), so on a recording the jerk bounds judge the smoothed signal. The gate
never smooths the simulated tracks it is there for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.assessment.smoothing import RECORDED_HALF_WINDOW_S, smooth_recorded
from simulator_harness.closed_loop.events import EVENT_CODE
from simulator_harness.closed_loop.state import DT_S, KIND_SIZE
from simulator_harness.closed_loop.step import SimParams
from simulator_harness.errors import TrajectoryError
from simulator_harness.scenario.spec import ActorKind, EventKind, ScenarioSpec
from simulator_harness.trajectory import EGO, Trajectory, require, unbatched

F64 = npt.NDArray[np.float64]
_VEHICLES = (ActorKind.CAR.value, ActorKind.TRUCK.value, ActorKind.CYCLIST.value)
_VRUS = (ActorKind.PEDESTRIAN.value, ActorKind.CYCLIST.value)  # speed caps of their own
_WHEELBASE = {k.value: size[2] for k, size in KIND_SIZE.items()}


@dataclass(frozen=True)
class PlausibilityParams:
    """Bounds of the gate (see the module docstring)."""

    accel_max_mps2: float = 10.4
    jerk_max_mps3: float = 20.0
    curvature_max_1pm: float = 0.3
    brake_max_mps2: float = 8.0
    lat_escape_accel_mps2: float = 5.0
    reaction_s: float = 0.5
    human_quantile: float = 99.0
    human_accel_mps2: float = 8.0
    human_jerk_mps3: float = 15.5
    human_speed_factor: float = 1.5  # vehicles: at most this times the speed limit
    human_speed_mps: dict[str, float] | None = None  # by kind; default pedestrian 3.5, cyclist 12


@dataclass(frozen=True)
class Verdict:
    """Gate result for one scenario: ``passed`` and, when it failed, every reason."""

    passed: bool
    reasons: tuple[str, ...]


def human_bound_violations(accel_mps2: F64, jerk_mps3: F64, speed_mps: F64, speed_cap_mps: float,
                           p: PlausibilityParams, who: str) -> list[str]:
    """Reasons why one road user's samples (1-D, any rate resampled to 10 Hz) exceed human bounds."""
    out = []
    q = p.human_quantile
    if accel_mps2.size and np.percentile(np.abs(accel_mps2), q) > p.human_accel_mps2 + 1e-6:
        out.append(f"human bounds: {who} P{q:g} |accel| {np.percentile(np.abs(accel_mps2), q):.1f} m/s² "
                   f"> {p.human_accel_mps2}")
    if jerk_mps3.size and np.percentile(np.abs(jerk_mps3), q) > p.human_jerk_mps3 + 1e-6:
        out.append(f"human bounds: {who} P{q:g} |jerk| {np.percentile(np.abs(jerk_mps3), q):.1f} m/s³ "
                   f"> {p.human_jerk_mps3}")
    if speed_mps.size and np.percentile(speed_mps, q) > speed_cap_mps:
        out.append(f"human bounds: {who} P{q:g} speed {np.percentile(speed_mps, q):.1f} m/s > {speed_cap_mps:.1f}")
    return out


def check(traj: Trajectory, params: SimParams, specs: Sequence[ScenarioSpec],
          p: PlausibilityParams | None = None) -> list[Verdict]:
    """One :class:`Verdict` per scenario of ``traj`` (simulated from ``specs`` with ``params``)."""
    p = p or PlausibilityParams()
    out = []
    for i, spec in enumerate(specs):
        names = ["ego", *(a.name for a in spec.actors)]
        reasons = _kinematics(traj, i, names, p) + _avoidability(traj, params, i, names, p)
        reasons += _human(traj, params, i, names, p)
        out.append(Verdict(passed=not reasons, reasons=tuple(reasons)))
    return out


def _derivatives(valid: npt.NDArray[np.bool_], v: F64, acc: F64, yaw_rad: F64) -> tuple[F64, F64, F64, F64]:
    """Longitudinal accel, lateral accel, jerk (while moving) and curvature (above 2 m/s) samples of
    one road user's ``(T,)`` series at the closed loop's step ``DT_S``, by plain differencing."""
    yaw = np.unwrap(yaw_rad)
    pair = valid[1:] & valid[:-1]
    yaw_rate = np.diff(yaw) / DT_S
    v_mid = 0.5 * (v[1:] + v[:-1])
    lat = (v_mid * yaw_rate)[pair]
    moving = pair & (v[1:] > 0.5) & (v[:-1] > 0.5)
    jerk = (np.diff(acc) / DT_S)[moving]
    fast = pair & (v_mid > 2.0)
    kappa = (yaw_rate / np.maximum(v_mid, 1e-3))[fast]
    return acc[1:][pair], lat, jerk, kappa


def _vehicle_kinematics(name: str, kind: str, valid: npt.NDArray[np.bool_], v: F64, acc: F64, yaw: F64,
                        p: PlausibilityParams) -> list[str]:
    """Why one vehicle's ``(T,)`` series is kinematically infeasible (empty when it is feasible)."""
    reasons = []
    lon, lat, jerk, kappa = _derivatives(valid, v, acc, yaw)
    total = np.hypot(lon, lat) if lon.size else lon
    if total.size and total.max() > p.accel_max_mps2:
        reasons.append(f"kinematics: {name} |accel| {total.max():.1f} m/s² > {p.accel_max_mps2}")
    if jerk.size and np.abs(jerk).max() > p.jerk_max_mps3:
        reasons.append(f"kinematics: {name} |jerk| {np.abs(jerk).max():.1f} m/s³ > {p.jerk_max_mps3}")
    if kappa.size and np.abs(kappa).max() > p.curvature_max_1pm:
        k = float(np.abs(kappa).max())
        steer = np.degrees(np.arctan(k * _WHEELBASE[kind]))
        reasons.append(f"kinematics: {name} curvature {k:.2f} 1/m > {p.curvature_max_1pm} (steering {steer:.0f} deg)")
    return reasons


def _kinematics(traj: Trajectory, i: int, names: list[str], p: PlausibilityParams) -> list[str]:
    reasons = []
    kinds = require(traj.kind, "kind")
    for a, name in enumerate(names):
        if str(kinds[i, a]) not in _VEHICLES or not traj.valid[i, a].any():
            continue
        reasons += _vehicle_kinematics(name, str(kinds[i, a]), traj.valid[i, a], traj.speed_mps[i, a],
                                       traj.accel_mps2[i, a], traj.yaw_rad[i, a], p)
    return reasons


def _avoidability(traj: Trajectory, params: SimParams, i: int, names: list[str],
                  p: PlausibilityParams) -> list[str]:
    reasons = []
    length_m, width_m = require(traj.length_m, "length_m"), require(traj.width_m, "width_m")
    lanes = require(traj.lane, "lane")
    events = params.events
    road = params.road
    t = traj.t_s
    for k in range(events.kind.shape[1]):
        code = int(events.kind[i, k])
        if code < 0:
            continue
        kind = list(EVENT_CODE)[code]
        a = int(events.actor[i, k])
        k_vis = int(np.searchsorted(t, events.t_s[i, k] - 1e-9))
        if kind is EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT:
            on = road.on_road(traj.x_m[i, a], traj.y_m[i, a]) & (np.arange(t.size) >= k_vis)
            if not on.any():
                continue
            k_vis = int(np.argmax(on))
        if k_vis >= t.size or not traj.valid[i, EGO, k_vis]:
            continue
        # The ego holds its speed from k_vis; find when the threat enters its corridor.
        dt = t[k_vis:] - t[k_vis]
        h = traj.yaw_rad[i, EGO, k_vis]
        ex = traj.x_m[i, EGO, k_vis] + traj.speed_mps[i, EGO, k_vis] * np.cos(h) * dt
        ey = traj.y_m[i, EGO, k_vis] + traj.speed_mps[i, EGO, k_vis] * np.sin(h) * dt
        dx, dy = traj.x_m[i, a, k_vis:] - ex, traj.y_m[i, a, k_vis:] - ey
        along, across = dx * np.cos(h) + dy * np.sin(h), -dx * np.sin(h) + dy * np.cos(h)
        rel = traj.yaw_rad[i, a, k_vis:] - h
        c, s = np.abs(np.cos(rel)), np.abs(np.sin(rel))
        length, width = length_m[i, a], width_m[i, a]
        half_across = 0.5 * (s * length + c * width)
        half_along = 0.5 * (c * length + s * width)
        gap = along - 0.5 * length_m[i, EGO] - half_along
        # In the corridor and not yet behind the ego's rear: ahead, or alongside (a side impact).
        not_passed = gap > -(length_m[i, EGO] + 2.0 * half_along)
        inside = (np.abs(across) < 0.5 * width_m[i, EGO] + half_across) & not_passed
        inside &= traj.valid[i, a, k_vis:]
        if not inside.any():
            continue
        j = int(np.argmax(inside))
        v_rel = traj.speed_mps[i, EGO, k_vis] - traj.speed_mps[i, a, k_vis + j] * np.cos(rel[j])
        a_obj = -events.p1[i, k] if kind is EventKind.LEAD_HARD_BRAKE else 0.0
        if v_rel <= 0 and a_obj >= 0:
            continue
        # Braking: stop short of where the threat enters, starting one reaction time after k_vis.
        x_eff = gap[j] + max(v_rel, 0.0) * (dt[j] - p.reaction_s)
        a_req = min(a_obj - max(v_rel, 0.0) ** 2 / (2.0 * x_eff), 0.0) if x_eff > 0 else -np.inf
        if a_req >= -p.brake_max_mps2:
            continue
        # Steering: move clear within the time left before contact at constant closing.
        close = max(-a_obj, 0.0)
        g = max(gap[j], 0.0)
        tau = (-v_rel + np.sqrt(v_rel**2 + 2.0 * close * g)) / close if close > 0 else g / v_rel
        time_left = dt[j] + tau - p.reaction_s
        lane = int(lanes[i, EGO, k_vis])
        side = lane >= 0 and (road.left_lane[lane] >= 0 or road.right_lane[lane] >= 0)
        shift = 0.5 * width_m[i, EGO] + half_across[j] - abs(across[j]) + 0.3
        if side and time_left > 0 and 0.5 * p.lat_escape_accel_mps2 * time_left**2 >= shift:
            continue
        reasons.append(f"unavoidable: {kind} by {names[a]} at t={t[k_vis]:.1f} s: braking needs "
                       f"{-a_req:.1f} m/s² > {p.brake_max_mps2} and no lateral escape")
    return reasons


def _human_agent(name: str, kind: str, valid: npt.NDArray[np.bool_], v: F64, acc: F64, yaw: F64, cap_mps: float,
                 speed_only: bool, p: PlausibilityParams) -> list[str]:
    """Why one road user's ``(T,)`` series is beyond the human bounds (empty when within them)."""
    lon, _, jerk, _ = _derivatives(valid, v, acc, yaw)
    if speed_only or kind == ActorKind.PEDESTRIAN:
        lon, jerk = lon[:0], jerk[:0]  # walkers and crossing riders: speed only
    return human_bound_violations(lon, jerk, v[valid], cap_mps, p, name)


def _caps(p: PlausibilityParams) -> dict[str, float]:
    return {"pedestrian": 3.5, "cyclist": 12.0, **(p.human_speed_mps or {})}


def _human(traj: Trajectory, params: SimParams, i: int, names: list[str], p: PlausibilityParams) -> list[str]:
    caps = _caps(p)
    kinds, lanes = require(traj.kind, "kind"), require(traj.lane, "lane")
    reasons = []
    for a, name in enumerate(names[1:], start=1):
        ok = traj.valid[i, a]
        if not ok.any():
            continue
        kind = str(kinds[i, a])
        if kind in _VRUS:
            cap = caps[kind]
        else:
            lane = np.maximum(lanes[i, a][ok], 0)
            cap = float(p.human_speed_factor * params.road.speed_limit_mps[lane].max())
        reasons += _human_agent(name, kind, ok, traj.speed_mps[i, a], traj.accel_mps2[i, a], traj.yaw_rad[i, a], cap,
                                bool((lanes[i, a][ok] < 0).all()), p)
    return reasons


def check_recorded(traj: Trajectory, speed_limit_mps: float, p: PlausibilityParams | None = None,
                   half_window_s: float | None = RECORDED_HALF_WINDOW_S) -> list[Verdict]:
    """One :class:`Verdict` per recorded road user of ``traj`` ``(agents, time)``: its track,
    smoothed by :func:`~simulator_harness.assessment.smoothing.smooth_recorded` over
    ``±half_window_s``, goes through the same per-road-user checks the gate applies to simulated
    ones (kinematics for vehicles, the human bounds for everyone; vehicles' speed cap
    ``human_speed_factor · speed_limit_mps``). ``kind`` must hold :class:`ActorKind` values.

    ``half_window_s=None`` checks the recorded values as they are, by plain differencing: the
    recording must then be at the closed loop's step and give an acceleration wherever it is valid.
    """
    p = p or PlausibilityParams()
    rec = unbatched(traj, "check_recorded")
    if half_window_s is not None:
        rec = smooth_recorded(rec, half_window_s)
    elif rec.n_steps > 1 and not np.allclose(np.diff(rec.t_s), DT_S):
        raise TrajectoryError(f"check_recorded without smoothing needs a {DT_S} s step; smooth it to resample")
    elif not np.isfinite(rec.accel_mps2[rec.valid]).all():
        raise TrajectoryError("check_recorded without smoothing needs accel_mps2 wherever the track is valid")
    kinds = require(rec.kind, "kind")
    ids = rec.agent_id if rec.agent_id is not None else np.arange(rec.n_agents)
    known = {k.value for k in ActorKind}
    caps = _caps(p)
    out = []
    for a in range(rec.n_agents):
        kind, name, ok = str(kinds[a]), f"agent {int(ids[a])}", rec.valid[a]
        if kind not in known:
            raise TrajectoryError(f"{name}: kind {kind!r} is not an ActorKind ({', '.join(sorted(known))}); map "
                                  "recorded types first (simulator_harness.seeds.recorded_tracks)")
        series = (ok, rec.speed_mps[a], rec.accel_mps2[a], rec.yaw_rad[a])
        reasons = _vehicle_kinematics(name, kind, *series, p) if kind in _VEHICLES and ok.any() else []
        cap = caps[kind] if kind in _VRUS else p.human_speed_factor * speed_limit_mps
        reasons += _human_agent(name, kind, *series, cap, False, p) if ok.any() else []
        out.append(Verdict(passed=not reasons, reasons=tuple(reasons)))
    return out
