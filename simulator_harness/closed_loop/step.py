"""The functional step: ``step(state, action, params) -> new_state`` for a whole batch at 10 Hz.

Order within a step: fire due events; index lane occupancy; IDM acceleration for every agent on
a lane (leader or red light, whichever is stricter); MOBIL lane changes on decision steps; the ego
takes the policy's action; forced braking from events; jerk limit; integrate. Agents react to
the ego's *actual* state because the ego is an ordinary entry of the lane index.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.events import EventTable, fire_events
from simulator_harness.closed_loop.idm import IDMParams, LaneChangeCandidate, MOBILParams, idm_accel, mobil_gain
from simulator_harness.closed_loop.neighbours import LaneIndex, build_index, neighbour_at, own_follower, own_leader
from simulator_harness.closed_loop.road import Road
from simulator_harness.closed_loop.state import DT_S, EgoAction, SimState
from simulator_harness.trajectory import EGO

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SimParams:
    """Everything constant over a rollout: road, event schedule and model parameters."""

    road: Road
    events: EventTable
    idm: IDMParams = field(default_factory=IDMParams)
    mobil: MOBILParams = field(default_factory=MOBILParams)
    walker_accel_max_mps2: float = 2.0  # free movers (pedestrians, crossing cyclists)
    walker_decel_max_mps2: float = 3.0
    lane_end_margin_m: float = 5.0  # an agent this far past its lane's end leaves the scenario


def step(state: SimState, action: EgoAction, params: SimParams) -> SimState:
    """Advance every scenario by ``DT_S``; pure (returns a new state, inputs are not modified)."""
    road = params.road
    state = fire_events(state, params.events, road)
    n_s, n_a = state.shape
    index = build_index(state, road, state.lane_order_hint)
    v = state.speed_mps.ravel()
    lane = state.lane.ravel().copy()
    d = state.d_m.ravel().copy()
    a_cmd = _lane_accel(state, index, params)
    period = max(1, round(params.mobil.decision_period_s / DT_S))
    if state.step_index % period == 0:
        _mobil(state, index, params, lane, d)
    ego = np.arange(n_s) * n_a + EGO
    a_cmd[ego] = action.accel_mps2
    _ego_lane_change(ego, action.lane_change, state, road, lane, d)
    active = (state.brake_mps2.ravel() > 0) & (state.t_s < state.brake_until_s.ravel())
    np.copyto(a_cmd, -state.brake_mps2.ravel(), where=active)

    on_lane = lane >= 0
    free = np.flatnonzero(~on_lane)
    if free.size:  # walkers head for their desired pace
        v_free = v[free]
        a_cmd[free] = np.clip((state.v0_mps.ravel()[free] - v_free) / DT_S,
                              -params.walker_decel_max_mps2, params.walker_accel_max_mps2)
    a_prev = state.accel_mps2.ravel()
    jerk = state.jerk_max_mps3.ravel() * DT_S
    np.maximum(a_cmd, a_prev - jerk, out=a_cmd)
    a_lim = np.minimum(a_cmd, np.add(a_prev, jerk, out=jerk), out=a_cmd)
    v_new = np.multiply(a_lim, DT_S, out=a_lim)
    np.add(v, v_new, out=v_new)
    np.maximum(v_new, 0.0, out=v_new)
    a_eff = np.subtract(v_new, v)
    np.divide(a_eff, DT_S, out=a_eff)
    dist = np.add(v, v_new)
    np.multiply(dist, 0.5, out=dist)
    np.multiply(dist, DT_S, out=dist)

    omega = state.lat_omega_radps.ravel()
    vd = state.vd_mps.ravel()
    lat_max = state.lat_accel_max_mps2.ravel()
    acc_d = np.minimum(np.maximum(-omega * omega * d - 2.0 * omega * vd, -lat_max), lat_max)
    # A vehicle cannot move sideways without rolling: parked cars keep their kerbside offset.
    vd_new = np.where(on_lane & (v_new > 0.5), vd + acc_d * DT_S, 0.0)
    d_new = np.where(on_lane, d + vd_new * DT_S, 0.0)
    s_new = state.s_m.ravel() + np.where(on_lane, dist, 0.0)

    li = np.maximum(lane, 0)
    ch, sh = np.take(road.cos_heading, li), np.take(road.sin_heading, li)
    x_new = np.take(road.origin_xy_m[:, 0], li)
    x_new += s_new * ch
    x_new -= d_new * sh
    y_new = np.take(road.origin_xy_m[:, 1], li)
    y_new += s_new * sh
    y_new += d_new * ch
    yaw_new = np.take(road.heading_rad, li)
    turning = np.flatnonzero(vd_new)  # atan2(0, v > 0) is 0: the rest keep the lane heading
    yaw_new[turning] += np.arctan2(vd_new[turning], np.maximum(v_new[turning], 1.0))
    if free.size:  # walkers keep their heading
        yaw_old = state.yaw_rad.ravel()[free]
        x_new[free] = state.x_m.ravel()[free] + dist[free] * np.cos(yaw_old)
        y_new[free] = state.y_m.ravel()[free] + dist[free] * np.sin(yaw_old)
        yaw_new[free] = yaw_old
    gone = on_lane & (s_new > road.length_m[li] + params.lane_end_margin_m)
    valid = state.valid.ravel() & ~gone

    shape = (n_s, n_a)
    return dataclasses.replace(
        state, t_s=state.t_s + DT_S, step_index=state.step_index + 1,
        x_m=x_new.reshape(shape), y_m=y_new.reshape(shape), yaw_rad=yaw_new.reshape(shape),
        speed_mps=v_new.reshape(shape), accel_mps2=a_eff.reshape(shape), s_m=s_new.reshape(shape),
        d_m=d_new.reshape(shape), vd_mps=vd_new.reshape(shape), lane=lane.reshape(shape),
        valid=valid.reshape(shape), lane_order_hint=index.entry_id)


def _lane_accel(state: SimState, index: LaneIndex, params: SimParams) -> F64:
    """IDM acceleration of every agent (flat), toward its leader and any red light ahead."""
    road, idm = params.road, params.idm
    a = np.zeros(state.x_m.size)
    me = index.own_agent
    if me.size == 0:
        return a
    s = state.s_m.ravel()[me]
    v = state.speed_mps.ravel()[me]
    v0 = state.v0_mps.ravel()[me]
    half = state.length_m.ravel()[me] * 0.5
    gap, v_lead, _ = neighbour_at(index, own_leader(index), s, half, ahead=True)
    acc = idm_accel(v, v0, gap, v - v_lead, idm)
    lane = state.lane.ravel()[me]
    stop = road.stop_line_s_m[lane]
    if np.isfinite(stop).any():
        red = ~road.green(state.t_s)[lane] & ~state.ignore_signal.ravel()[me]
        gap_stop = stop - s - half
        can_stop = (v * v <= 2.0 * idm.stop_decel_max_mps2 * np.maximum(gap_stop, 0.1)) | (v < 1.0)
        stopping = red & (gap_stop >= 0.0) & can_stop
        if stopping.any():
            acc = np.where(stopping, np.minimum(acc, idm_accel(v, v0, gap_stop, v, idm)), acc)
    parked = v0 <= 0.0
    acc = np.where(parked, -np.minimum(v / DT_S, idm.decel_max_mps2), acc)
    a[me] = acc
    return a


def _mobil(state: SimState, index: LaneIndex, params: SimParams, lane: I64, d: F64) -> None:
    """Take MOBIL decisions for every eligible agent; updates ``lane``/``d`` (flat) in place."""
    road = params.road
    me = index.own_agent
    ok = (state.mobil.ravel()[me] & (state.speed_mps.ravel()[me] >= params.mobil.min_speed_mps)
          & (np.abs(state.d_m.ravel()[me]) < 0.2) & (np.abs(state.vd_mps.ravel()[me]) < 0.2))
    sel = np.flatnonzero(ok)
    if sel.size == 0:
        return
    ag = me[sel]
    n_a = state.shape[1]
    scen = ag // n_a
    s = state.s_m.ravel()[ag]
    v = state.speed_mps.ravel()[ag]
    v0_all = state.v0_mps.ravel()
    v0 = v0_all[ag]
    half = state.length_m.ravel()[ag] * 0.5
    cur = state.lane.ravel()[ag]
    gap_c, v_l, _ = neighbour_at(index, own_leader(index)[sel], s, half, ahead=True)
    a_c = idm_accel(v, v0, gap_c, v - v_l, params.idm)
    gap_o, v_o, o_id = neighbour_at(index, own_follower(index)[sel], s, half, ahead=False)
    best_gain = np.full(ag.shape, params.mobil.gain_threshold_mps2)
    best_lane = np.full(ag.shape, -1, dtype=np.int64)
    # Sides alternate between decisions, so two drivers never merge into one gap from both sides.
    decision = state.step_index // max(1, round(params.mobil.decision_period_s / DT_S))
    for side in ((road.left_lane,) if decision % 2 == 0 else (road.right_lane,)):
        target = side[cur]
        tgt = np.maximum(target, 0)
        ahead, behind = index.lookup(scen, tgt, s)
        gap_new, v_nl, _ = neighbour_at(index, ahead, s, half, ahead=True)
        gap_n, v_n, n_id = neighbour_at(index, behind, s, half, ahead=False)
        cand = LaneChangeCandidate(
            v_c=v, v0_c=v0, a_c=a_c, gap_c_new=gap_new, v_new_leader=v_nl,
            v_n=v_n, v0_n=v0_all[np.maximum(n_id, 0)], gap_n_c=gap_n,
            gap_n_old=gap_n + 2.0 * half + gap_new, v_o=v_o, v0_o=v0_all[np.maximum(o_id, 0)],
            gap_o_c=gap_o, gap_o_lead=gap_o + 2.0 * half + gap_c, v_old_leader=v_l)
        gain, safe = mobil_gain(cand, params.idm, params.mobil)
        better = (target >= 0) & safe & (gain > best_gain)
        best_gain = np.where(better, gain, best_gain)
        best_lane = np.where(better, target, best_lane)
    change = best_lane >= 0
    if change.any():
        _switch_lane(ag[change], best_lane[change], road, lane, d)


def _ego_lane_change(ego: I64, request: I64, state: SimState, road: Road, lane: I64, d: F64) -> None:
    """Start the ego lane changes the policy asked for, where a lane exists and none is under way."""
    want = (request != 0) & (lane[ego] >= 0) & (np.abs(state.d_m.ravel()[ego]) < 0.2)
    if not want.any():
        return
    idx = ego[want]
    cur = lane[idx]
    target = np.where(request[want] > 0, road.left_lane[cur], road.right_lane[cur])
    ok = target >= 0
    _switch_lane(idx[ok], target[ok], road, lane, d)


def _switch_lane(agent: I64, target: I64, road: Road, lane: I64, d: F64) -> None:
    """Move ``agent`` (flat ids) to lane ``target`` keeping its position: ``d`` becomes the offset
    from the new centre line, which the lateral model then drives to zero."""
    old = lane[agent]
    h = road.heading_rad[target]
    normal = np.stack([-np.sin(h), np.cos(h)], axis=-1)
    shift = np.sum((road.origin_xy_m[old] - road.origin_xy_m[target]) * normal, axis=-1)
    lane[agent] = target
    d[agent] = d[agent] + shift
