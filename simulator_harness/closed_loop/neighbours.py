"""Who is ahead of and behind whom, per lane, for a whole batch at once.

Every agent occupying a lane becomes an *entry* ``(scenario, lane, s)``: its own lane; the
neighbouring lane while its body straddles the lane line (mid lane change); and, for agents not on
a main-road lane (pedestrians, crossing traffic), the main-road lane their position lies in. One
sort of the combined key orders all entries; an agent's leader is the next entry of its group, its
follower the previous one, and a gap in another lane is found with one ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.road import Road
from simulator_harness.closed_loop.state import SimState

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LaneIndex:
    """Sorted lane entries. ``agent``/``s_m``/``half_m``/``v_mps`` are per sorted entry; the first
    ``n_own`` unsorted entries are the agents' own-lane entries, ``own_agent`` their flat agent ids
    and ``own_pos`` their positions in sorted order."""

    key: F64
    group: I64
    agent: I64
    s_m: F64
    half_m: F64  # half the body length along the lane
    v_mps: F64  # speed along the lane
    own_agent: I64
    own_pos: I64
    stride: float
    offset: float
    n_groups: int

    def lookup(self, scenario: I64, lane: I64, s_m: F64) -> tuple[I64, I64]:
        """Sorted positions of the first entry at or ahead of ``s_m`` in ``lane`` and the one behind;
        -1 where there is none."""
        group = scenario * self.n_groups + lane
        key = group * self.stride + np.clip(s_m + self.offset, 0.0, self.stride - 1.0)
        pos = np.searchsorted(self.key, key, side="left")
        n = self.key.shape[0]
        ahead = np.where((pos < n) & (self.group[np.minimum(pos, n - 1)] == group), pos, -1)
        back = pos - 1
        behind = np.where((back >= 0) & (self.group[np.maximum(back, 0)] == group), back, -1)
        return ahead.astype(np.int64), behind.astype(np.int64)


def build_index(state: SimState, road: Road) -> LaneIndex:
    """Index every lane occupancy of ``state`` (see the module docstring)."""
    n_s, n_a = state.shape
    lane = state.lane.ravel()
    valid = state.valid.ravel()
    scen = np.repeat(np.arange(n_s, dtype=np.int64), n_a)
    s = state.s_m.ravel()
    v = state.v_mps.ravel()
    half = state.length_m.ravel() * 0.5
    n_groups = road.n_lanes + 1
    on_lane = valid & (lane >= 0)
    own = np.flatnonzero(on_lane)
    parts_agent = [own]
    parts_group = [scen[own] * n_groups + lane[own]]
    parts_s, parts_half, parts_v = [s[own]], [half[own]], [v[own]]

    # Straddlers: the body crosses the lane line, so the neighbouring lane must see it too.
    d = state.d_m.ravel()
    straddle = on_lane & (np.abs(d) + state.width_m.ravel() * 0.5 > road.width_m * 0.5)
    if straddle.any():
        idx = np.flatnonzero(straddle)
        nb = np.where(d[idx] > 0, road.left_lane[lane[idx]], road.right_lane[lane[idx]])
        idx, nb = idx[nb >= 0], nb[nb >= 0]
        parts_agent.append(idx)
        parts_group.append(scen[idx] * n_groups + nb)
        parts_s.append(s[idx])
        parts_half.append(half[idx])
        parts_v.append(v[idx])

    # Foreigners: users not on a main lane whose position lies on the main road.
    not_main = valid & ((lane < 0) | ~road.is_main[np.maximum(lane, 0)])
    if not_main.any():
        idx = np.flatnonzero(not_main)
        x, y = state.x_m.ravel()[idx], state.y_m.ravel()[idx]
        j = np.floor((y + road.width_m * 0.5) / road.width_m).astype(np.int64)
        inside = (j >= 0) & (j < road.n_main) & (x >= 0.0) & (x <= road.spec.length_m)
        idx, j, x = idx[inside], j[inside], x[inside]
        yaw = state.yaw_rad.ravel()[idx]
        c, sn = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
        parts_agent.append(idx)
        parts_group.append(scen[idx] * n_groups + j)
        parts_s.append(x)
        parts_half.append(0.5 * (c * state.length_m.ravel()[idx] + sn * state.width_m.ravel()[idx]))
        parts_v.append(v[idx] * np.cos(yaw))

    agent = np.concatenate(parts_agent)
    group = np.concatenate(parts_group)
    s_all = np.concatenate(parts_s)
    offset = float(road.spec.length_m)
    stride = 4.0 * offset
    key = group * stride + np.clip(s_all + offset, 0.0, stride - 1.0)
    order = np.argsort(key, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(order.shape[0])
    return LaneIndex(
        key=key[order], group=group[order], agent=agent[order], s_m=s_all[order],
        half_m=np.concatenate(parts_half)[order], v_mps=np.concatenate(parts_v)[order],
        own_agent=own, own_pos=pos[: own.shape[0]], stride=stride, offset=offset, n_groups=n_groups)


def neighbour_at(index: LaneIndex, pos: I64, s_m: F64, half_m: F64, ahead: bool) -> tuple[F64, F64, I64]:
    """Gap (bumper to bumper, m; ``inf`` if none), speed along the lane and flat agent id (-1) of the
    entries at sorted positions ``pos`` (-1 = none), seen from a body at ``s_m`` with ``half_m``."""
    has = pos >= 0
    p = np.maximum(pos, 0)
    if index.agent.shape[0] == 0:
        inf = np.full(pos.shape, np.inf)
        return inf, np.zeros(pos.shape), np.full(pos.shape, -1, dtype=np.int64)
    raw = (index.s_m[p] - s_m) if ahead else (s_m - index.s_m[p])
    gap = np.where(has, raw - half_m - index.half_m[p], np.inf)
    return gap, np.where(has, index.v_mps[p], 0.0), np.where(has, index.agent[p], -1)


def own_leader(index: LaneIndex) -> I64:
    """Sorted position of each own entry's leader (next entry of the same group), -1 if none."""
    nxt = index.own_pos + 1
    n = index.key.shape[0]
    ok = (nxt < n) & (index.group[np.minimum(nxt, n - 1)] == index.group[index.own_pos])
    return np.where(ok, nxt, -1).astype(np.int64)


def own_follower(index: LaneIndex) -> I64:
    """Sorted position of each own entry's follower (previous entry of the same group), -1 if none."""
    prv = index.own_pos - 1
    ok = (prv >= 0) & (index.group[np.maximum(prv, 0)] == index.group[index.own_pos])
    return np.where(ok, prv, -1).astype(np.int64)
