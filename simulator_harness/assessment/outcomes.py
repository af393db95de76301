"""Outcome metrics of a rollout, as small stateless classes registered by name.

Every metric maps a closed-loop :class:`~simulator_harness.trajectory.Trajectory` (``(S, A, T)``, with
agent sizes; the lane frame where a metric needs it) and its :class:`Road` to a :class:`MetricResult`
with one ``value`` and one ``valid`` flag per scenario. Metrics are about
the ego (agent 0) unless they say otherwise; ``valid`` is false where the ego never existed or the
rollout is too short for the quantity. Thresholds follow nuPlan where nuPlan defines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.geometry import boxes_overlap, corners
from simulator_harness.closed_loop.road import Road
from simulator_harness.closed_loop.state import DT_S
from simulator_harness.trajectory import EGO, Trajectory, require

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MetricResult:
    """Per-scenario ``value`` (S,) and ``valid`` (S,)."""

    value: F64
    valid: B


class Metric(Protocol):
    """A named, stateless outcome metric."""

    name: ClassVar[str]

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """Evaluate on every scenario of ``traj``."""
        ...


METRICS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` available to :func:`get` under ``cls.name``."""
    METRICS[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def get(name: str) -> Metric:
    """A default-configured instance of the metric registered as ``name``."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})")
    return METRICS[name]()  # type: ignore[no-any-return]


def compute_all(traj: Trajectory, road: Road, names: list[str] | None = None) -> dict[str, MetricResult]:
    """Every registered metric (or ``names``) on ``traj``."""
    return {n: get(n)(traj, road) for n in (names or sorted(METRICS))}


def _size(traj: Trajectory) -> tuple[F64, F64]:
    """Box length and width per agent, ``(S, A)``: every metric needs them."""
    return require(traj.length_m, "length_m"), require(traj.width_m, "width_m")


def _box(traj: Trajectory) -> tuple[F64, F64, F64, F64, F64]:
    length_m, width_m = _size(traj)
    return (traj.x_m, traj.y_m, traj.yaw_rad, length_m[..., None], width_m[..., None])


def ego_overlaps(traj: Trajectory) -> B:
    """``(S, A, T)``: the ego's box overlaps agent ``a``'s box at step ``t`` (the ego column is False)."""
    x, y, yaw, length, width = _box(traj)
    ego = (x[:, EGO:EGO + 1], y[:, EGO:EGO + 1], yaw[:, EGO:EGO + 1], length[:, EGO:EGO + 1],
           width[:, EGO:EGO + 1])
    reach = 0.5 * np.hypot(length, width)
    near = np.hypot(x - ego[0], y - ego[1]) < reach + reach[:, EGO:EGO + 1]
    near &= traj.valid & traj.valid[:, EGO:EGO + 1]
    near[:, EGO] = False
    hit = np.zeros(near.shape, dtype=bool)
    if near.any():
        s, a, t = np.nonzero(near)
        hit[s, a, t] = boxes_overlap((x[s, a, t], y[s, a, t], yaw[s, a, t], length[s, a, 0], width[s, a, 0]),
                                     (x[s, EGO, t], y[s, EGO, t], yaw[s, EGO, t], length[s, EGO, 0],
                                      width[s, EGO, 0]))
    return hit


def pairwise_collisions(traj: Trajectory) -> npt.NDArray[np.int64]:
    """Number of distinct agent pairs (any agents, not only the ego) whose boxes ever overlap, (S,)."""
    length_m, width_m = _size(traj)
    n_s, n_a, _ = traj.shape
    count = np.zeros(n_s, dtype=np.int64)
    reach = 0.5 * np.hypot(length_m, width_m)
    for i in range(n_a - 1):
        j = np.arange(i + 1, n_a)
        dist = np.hypot(traj.x_m[:, j] - traj.x_m[:, i:i + 1], traj.y_m[:, j] - traj.y_m[:, i:i + 1])
        near = (dist < (reach[:, j] + reach[:, i:i + 1])[..., None]) & traj.valid[:, j] & traj.valid[:, i:i + 1]
        if not near.any():
            continue
        s, k, t = np.nonzero(near)
        a = j[k]
        hit = boxes_overlap((traj.x_m[s, i, t], traj.y_m[s, i, t], traj.yaw_rad[s, i, t], length_m[s, i],
                             width_m[s, i]),
                            (traj.x_m[s, a, t], traj.y_m[s, a, t], traj.yaw_rad[s, a, t], length_m[s, a],
                             width_m[s, a]))
        pairs = np.unique(np.stack([s[hit], a[hit]], axis=1), axis=0)
        np.add.at(count, pairs[:, 0], 1)
    return count


def _ego_valid(traj: Trajectory, min_steps: int = 1) -> B:
    return np.asarray(traj.valid[:, EGO].sum(axis=1) >= min_steps)


@register
@dataclass(frozen=True)
class Collision:
    """1.0 if the ego's box ever overlaps another agent's (SAT on oriented boxes), else 0.0."""

    name: ClassVar[str] = "collision"

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        hit = ego_overlaps(traj).any(axis=(1, 2))
        return MetricResult(np.asarray(hit, dtype=np.float64), _ego_valid(traj))


@register
@dataclass(frozen=True)
class MinTTC:
    """Smallest time to collision, s: ego and each agent are projected at constant velocity in
    ``step_s`` steps up to ``horizon_s``; ``inf`` when no projection ever overlaps. Steps after the
    ego's first collision are ignored; a step that already overlaps counts as 0 s."""

    name: ClassVar[str] = "min_ttc"
    horizon_s: float = 3.0
    step_s: float = 0.1

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        length_m, width_m = _size(traj)
        n_s = traj.shape[0]
        hit = ego_overlaps(traj).any(axis=1)  # (S, T)
        before: B = np.asarray(np.cumsum(hit, axis=1) - hit == 0)  # up to and including the first collision
        ks = np.arange(round(self.horizon_s / self.step_s) + 1) * self.step_s
        vx, vy = traj.speed_mps * np.cos(traj.yaw_rad), traj.speed_mps * np.sin(traj.yaw_rad)
        dx, dy = traj.x_m - traj.x_m[:, EGO:EGO + 1], traj.y_m - traj.y_m[:, EGO:EGO + 1]
        dvx, dvy = vx - vx[:, EGO:EGO + 1], vy - vy[:, EGO:EGO + 1]
        reach = 0.5 * np.hypot(length_m, width_m)
        closest = np.hypot(dx, dy) - np.hypot(dvx, dvy) * self.horizon_s
        cand = (closest < (reach + reach[:, EGO:EGO + 1])[..., None]) & traj.valid & traj.valid[:, EGO:EGO + 1]
        cand &= before[:, None, :]
        cand[:, EGO] = False
        out = np.full(n_s, np.inf)
        if cand.any():
            s, a, t = np.nonzero(cand)
            tt = ks[None, :]
            other = (traj.x_m[s, a, t][:, None] + vx[s, a, t][:, None] * tt,
                     traj.y_m[s, a, t][:, None] + vy[s, a, t][:, None] * tt, traj.yaw_rad[s, a, t][:, None],
                     length_m[s, a][:, None], width_m[s, a][:, None])
            ego = (traj.x_m[s, EGO, t][:, None] + vx[s, EGO, t][:, None] * tt,
                   traj.y_m[s, EGO, t][:, None] + vy[s, EGO, t][:, None] * tt, traj.yaw_rad[s, EGO, t][:, None],
                   length_m[s, EGO][:, None], width_m[s, EGO][:, None])
            over = boxes_overlap(other, ego)  # (n, K)
            first = np.where(over.any(axis=1), ks[np.argmax(over, axis=1)], np.inf)
            np.minimum.at(out, s, first)
        return MetricResult(out, _ego_valid(traj))


@register
@dataclass(frozen=True)
class RequiredDeceleration:
    """Most negative ``a_req = min(a_obj − v_rel² / (2·x_rel), 0)`` over time, m/s², for bodies
    overlapping the ego's corridor ahead: ``x_rel`` bumper gap along the ego's heading, ``v_rel``
    closing speed, ``a_obj`` the object's acceleration along the ego's heading. 0 when never closing."""

    name: ClassVar[str] = "required_deceleration"

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        length_m, width_m = _size(traj)
        e = slice(EGO, EGO + 1)
        h = traj.yaw_rad[:, e]
        dx, dy = traj.x_m - traj.x_m[:, e], traj.y_m - traj.y_m[:, e]
        along, across = dx * np.cos(h) + dy * np.sin(h), -dx * np.sin(h) + dy * np.cos(h)
        rel = traj.yaw_rad - h
        c, sn = np.abs(np.cos(rel)), np.abs(np.sin(rel))
        length, width = length_m[..., None], width_m[..., None]
        gap = along - 0.5 * length[:, e] - 0.5 * (c * length + sn * width)
        in_path = np.abs(across) < 0.5 * width[:, e] + 0.5 * (sn * length + c * width)
        v_rel = traj.speed_mps[:, e] - traj.speed_mps * np.cos(rel)
        a_obj = traj.accel_mps2 * np.cos(rel)
        use = traj.valid & traj.valid[:, e] & in_path & (gap > 0) & (v_rel > 0)
        use[:, EGO] = False
        with np.errstate(divide="ignore", invalid="ignore"):
            a_req = np.where(use, np.minimum(a_obj - v_rel**2 / (2.0 * gap), 0.0), 0.0)
        return MetricResult(np.asarray(a_req.min(axis=(1, 2)), dtype=np.float64), _ego_valid(traj))


@register
@dataclass(frozen=True)
class HardBrakes:
    """Number of separate episodes in which the ego decelerates harder than ``threshold_mps2``."""

    name: ClassVar[str] = "hard_brakes"
    threshold_mps2: float = -4.0

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        braking = (traj.accel_mps2[:, EGO] < self.threshold_mps2) & traj.valid[:, EGO]
        starts = braking[:, :1].astype(np.int64).sum(axis=1) + (braking[:, 1:] & ~braking[:, :-1]).sum(axis=1)
        return MetricResult(starts.astype(np.float64), _ego_valid(traj, 2))


@register
@dataclass(frozen=True)
class OffRoad:
    """1.0 if any corner of the ego's box ever leaves the drivable surface, else 0.0."""

    name: ClassVar[str] = "off_road"

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        length_m, width_m = _size(traj)
        c = corners((traj.x_m[:, EGO], traj.y_m[:, EGO], traj.yaw_rad[:, EGO],
                     length_m[:, EGO, None], width_m[:, EGO, None]))
        off = ~road.on_road(c[..., 0], c[..., 1])  # (S, T, 4)
        off &= traj.valid[:, EGO][..., None]
        return MetricResult(np.asarray(off.any(axis=(1, 2)), dtype=np.float64), _ego_valid(traj))


#: nuPlan ``ego_is_comfortable`` bounds.
COMFORT_BOUNDS: dict[str, tuple[float, float]] = {
    "lon_accel_mps2": (-4.05, 2.40), "lat_accel_mps2": (-4.89, 4.89), "jerk_mps3": (-8.37, 8.37),
    "lon_jerk_mps3": (-4.13, 4.13), "yaw_rate_radps": (-0.95, 0.95), "yaw_accel_radps2": (-1.93, 1.93)}


def ego_kinematics(traj: Trajectory) -> dict[str, F64]:
    """Ego signals ``(S, T)`` for comfort checks, by finite differences at 10 Hz (names as in
    :data:`COMFORT_BOUNDS`)."""
    v = traj.speed_mps[:, EGO]
    yaw = np.unwrap(traj.yaw_rad[:, EGO], axis=1)
    yaw_rate = np.gradient(yaw, DT_S, axis=1)
    lon = np.gradient(v, DT_S, axis=1)
    lat = v * yaw_rate
    lon_jerk = np.gradient(lon, DT_S, axis=1)
    lat_jerk = np.gradient(lat, DT_S, axis=1)
    return {"lon_accel_mps2": lon, "lat_accel_mps2": lat, "jerk_mps3": np.hypot(lon_jerk, lat_jerk),
            "lon_jerk_mps3": lon_jerk, "yaw_rate_radps": yaw_rate,
            "yaw_accel_radps2": np.gradient(yaw_rate, DT_S, axis=1)}


@register
@dataclass(frozen=True)
class Comfort:
    """1.0 if every ego signal stays within :data:`COMFORT_BOUNDS` (nuPlan), else 0.0."""

    name: ClassVar[str] = "comfort"

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        ok = np.ones(traj.shape[0], dtype=bool)
        valid = traj.valid[:, EGO]
        for key, series in ego_kinematics(traj).items():
            lo, hi = COMFORT_BOUNDS[key]
            ok &= ~(((series < lo) | (series > hi)) & valid).any(axis=1)
        return MetricResult(ok.astype(np.float64), _ego_valid(traj, 3))


@register
@dataclass(frozen=True)
class RedLight:
    """Number of times the ego's front bumper crosses a stop line while that lane's signal is red."""

    name: ClassVar[str] = "red_light"

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        length_m = require(traj.length_m, "length_m")
        lane_index = require(traj.lane, "lane")
        s_m = require(traj.s_m, "s_m")
        lane = np.maximum(lane_index[:, EGO], 0)
        front = s_m[:, EGO] + 0.5 * length_m[:, EGO, None]
        stop = road.stop_line_s_m[lane]
        red = ~road.green(traj.t_s)[np.arange(lane.shape[1])[None, :], lane]  # (S, T)
        crossed = (front[:, :-1] < stop[:, 1:]) & (front[:, 1:] >= stop[:, 1:]) & (lane[:, 1:] == lane[:, :-1])
        crossed &= red[:, 1:] & traj.valid[:, EGO, 1:] & (lane_index[:, EGO, 1:] >= 0)
        return MetricResult(crossed.sum(axis=1).astype(np.float64), _ego_valid(traj, 2))


@register
@dataclass(frozen=True)
class SpeedLimit:
    """Largest amount, m/s, by which the ego exceeds its lane's speed limit plus ``tolerance_mps``."""

    name: ClassVar[str] = "speed_limit"
    tolerance_mps: float = 0.5

    def __call__(self, traj: Trajectory, road: Road) -> MetricResult:
        """See the class docstring."""
        lane_index = require(traj.lane, "lane")
        limit = road.speed_limit_mps[np.maximum(lane_index[:, EGO], 0)] + self.tolerance_mps
        over = np.where(traj.valid[:, EGO], traj.speed_mps[:, EGO] - limit, 0.0)
        return MetricResult(np.asarray(np.maximum(over.max(axis=1), 0.0), dtype=np.float64), _ego_valid(traj))

