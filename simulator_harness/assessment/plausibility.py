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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.events import EVENT_CODE
from simulator_harness.closed_loop.state import DT_S, KIND_SIZE
from simulator_harness.closed_loop.step import SimParams
from simulator_harness.scenario.spec import ActorKind, EventKind, ScenarioSpec
from simulator_harness.trajectory import EGO, Trajectory, require

F64 = npt.NDArray[np.float64]
_VEHICLES = (ActorKind.CAR.value, ActorKind.TRUCK.value, ActorKind.CYCLIST.value)
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


def _derivatives(traj: Trajectory, i: int, a: int) -> tuple[F64, F64, F64, F64]:
    """Longitudinal accel, lateral accel, jerk (while moving) and curvature (above 2 m/s) samples."""
    ok = traj.valid[i, a]
    v, acc, yaw = traj.speed_mps[i, a], traj.accel_mps2[i, a], np.unwrap(traj.yaw_rad[i, a])
    pair = ok[1:] & ok[:-1]
    yaw_rate = np.diff(yaw) / DT_S
    v_mid = 0.5 * (v[1:] + v[:-1])
    lat = (v_mid * yaw_rate)[pair]
    moving = pair & (v[1:] > 0.5) & (v[:-1] > 0.5)
    jerk = (np.diff(acc) / DT_S)[moving]
    fast = pair & (v_mid > 2.0)
    kappa = (yaw_rate / np.maximum(v_mid, 1e-3))[fast]
    return acc[1:][pair], lat, jerk, kappa


def _kinematics(traj: Trajectory, i: int, names: list[str], p: PlausibilityParams) -> list[str]:
    reasons = []
    kinds = require(traj.kind, "kind")
    for a, name in enumerate(names):
        if str(kinds[i, a]) not in _VEHICLES or not traj.valid[i, a].any():
            continue
        lon, lat, jerk, kappa = _derivatives(traj, i, a)
        total = np.hypot(lon, lat) if lon.size else lon
        if total.size and total.max() > p.accel_max_mps2:
            reasons.append(f"kinematics: {name} |accel| {total.max():.1f} m/s² > {p.accel_max_mps2}")
        if jerk.size and np.abs(jerk).max() > p.jerk_max_mps3:
            reasons.append(f"kinematics: {name} |jerk| {np.abs(jerk).max():.1f} m/s³ > {p.jerk_max_mps3}")
        if kappa.size and np.abs(kappa).max() > p.curvature_max_1pm:
            k = float(np.abs(kappa).max())
            steer = np.degrees(np.arctan(k * _WHEELBASE[str(kinds[i, a])]))
            reasons.append(f"kinematics: {name} curvature {k:.2f} 1/m > {p.curvature_max_1pm} "
                           f"(steering {steer:.0f} deg)")
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


def _human(traj: Trajectory, params: SimParams, i: int, names: list[str], p: PlausibilityParams) -> list[str]:
    caps = {"pedestrian": 3.5, "cyclist": 12.0, **(p.human_speed_mps or {})}
    kinds, lanes = require(traj.kind, "kind"), require(traj.lane, "lane")
    reasons = []
    for a, name in enumerate(names[1:], start=1):
        ok = traj.valid[i, a]
        if not ok.any():
            continue
        kind = str(kinds[i, a])
        v = traj.speed_mps[i, a][ok]
        if kind == ActorKind.PEDESTRIAN:
            cap = caps["pedestrian"]
        elif kind == ActorKind.CYCLIST:
            cap = caps["cyclist"]
        else:
            lane = np.maximum(lanes[i, a][ok], 0)
            cap = float(p.human_speed_factor * params.road.speed_limit_mps[lane].max())
        lon, _, jerk, _ = _derivatives(traj, i, a)
        if kind == ActorKind.PEDESTRIAN or (lanes[i, a][ok] < 0).all():
            lon, jerk = lon[:0], jerk[:0]  # walkers and crossing riders: speed only
        reasons += human_bound_violations(lon, jerk, v, cap, p, name)
    return reasons
