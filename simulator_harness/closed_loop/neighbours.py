"""Who is ahead of and behind whom, per lane, for a whole batch at once.

Every agent occupying a lane becomes an *entry* ``(scenario, lane, s)``: its own lane; the
neighbouring lane while its body straddles the lane line (mid lane change); and, for agents not on
a main-road lane (pedestrians, crossing traffic), the main-road lane their position lies in. One
sort of the combined key orders all entries; an agent's leader is the next entry of its group, its
follower the previous one, and a gap in another lane is found with one ``searchsorted``.

Order hardly changes from one step to the next (IDM never lets a follower pass its leader), so the
sort starts from the previous step's order (``LaneIndex.entry_id`` passed back as ``hint``): the
entries still present keep their old places, new ones go last, and a stable sort of that nearly
sorted key is close to one linear pass. When all keys are distinct the sorted order is unique, so
the result is the one a full sort gives; with equal keys the full sort runs, keeping its tie order.
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
    """Sorted lane entries. ``agent``/``s_m``/``half_m``/``speed_mps`` are per sorted entry; the first
    ``n_own`` unsorted entries are the agents' own-lane entries, ``own_agent`` their flat agent ids
    and ``own_pos`` their positions in sorted order."""

    key: F64
    group: I64
    agent: I64
    s_m: F64
    half_m: F64  # half the body length along the lane
    speed_mps: F64  # speed along the lane
    own_agent: I64
    own_pos: I64
    entry_id: I64  # per sorted entry: agent id + N · (0 own lane, 1 straddled lane, 2 foreign)
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


def build_index(state: SimState, road: Road, hint: I64 | None = None) -> LaneIndex:
    """Index every lane occupancy of ``state`` (see the module docstring).

    ``hint`` is a previous index's ``entry_id``; it only changes how fast the sort runs, never its
    result (any array of ids, or ``None``, gives the same index)."""
    n_s, n_a = state.shape
    lane = state.lane.ravel()
    valid = state.valid.ravel()
    scen = np.repeat(np.arange(n_s, dtype=np.int64), n_a)
    s = state.s_m.ravel()
    v = state.speed_mps.ravel()
    half = state.length_m.ravel() * 0.5
    n_groups = road.n_lanes + 1
    on_lane = valid & (lane >= 0)
    own = np.flatnonzero(on_lane)
    parts_agent = [own]
    parts_type = [0]
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
        parts_type.append(1)
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
        parts_type.append(2)
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
    n_flat = lane.shape[0]
    entry_id = np.concatenate([a + t * n_flat for a, t in zip(parts_agent, parts_type, strict=True)])
    order = _sort_order(key, entry_id, hint, 3 * n_flat)
    pos = np.empty_like(order)
    pos[order] = np.arange(order.shape[0])
    return LaneIndex(
        key=key[order], group=group[order], agent=agent[order], s_m=s_all[order],
        half_m=np.concatenate(parts_half)[order], speed_mps=np.concatenate(parts_v)[order],
        own_agent=own, own_pos=pos[: own.shape[0]], entry_id=entry_id[order], stride=stride, offset=offset,
        n_groups=n_groups)


def _sort_order(key: F64, entry_id: I64, hint: I64 | None, n_ids: int) -> I64:
    """``np.argsort(key, kind="stable")``, started from the order of ``hint`` (see the module docstring)."""
    n = key.shape[0]
    if hint is not None and n > 1:
        where = np.full(n_ids, -1, dtype=np.int64)
        where[entry_id] = np.arange(n)
        kept = where[hint[(hint >= 0) & (hint < n_ids)]]
        kept = kept[kept >= 0]
        seen = np.zeros(n, dtype=bool)
        seen[kept] = True
        if np.count_nonzero(seen) == kept.shape[0]:  # a hint with repeated ids is ignored
            perm: I64 = np.concatenate([kept, np.flatnonzero(~seen)])
            k = key[perm]
            if not _strictly_increasing(k):
                sub = np.argsort(k, kind="stable")
                perm, k = perm[sub], k[sub]
            if _strictly_increasing(k):
                return perm
    return np.argsort(key, kind="stable")


def _strictly_increasing(k: F64) -> bool:
    return bool(np.all(k[1:] > k[:-1]))


def neighbour_at(index: LaneIndex, pos: I64, s_m: F64, half_m: F64, ahead: bool) -> tuple[F64, F64, I64]:
    """Gap (bumper to bumper, m; ``inf`` if none), speed along the lane and flat agent id (-1) of the
    entries at sorted positions ``pos`` (-1 = none), seen from a body at ``s_m`` with ``half_m``."""
    none = pos < 0
    if index.agent.shape[0] == 0:
        inf = np.full(pos.shape, np.inf)
        return inf, np.zeros(pos.shape), np.full(pos.shape, -1, dtype=np.int64)
    # mode="clip" reads entry 0 for pos == -1; those values are then overwritten.
    gap = np.take(index.s_m, pos, mode="clip")
    if ahead:
        np.subtract(gap, s_m, out=gap)
    else:
        np.subtract(s_m, gap, out=gap)
    np.subtract(gap, half_m, out=gap)
    np.subtract(gap, np.take(index.half_m, pos, mode="clip"), out=gap)
    np.copyto(gap, np.inf, where=none)
    v = np.take(index.speed_mps, pos, mode="clip")
    np.copyto(v, 0.0, where=none)
    agent = np.take(index.agent, pos, mode="clip")
    np.copyto(agent, -1, where=none)
    return gap, v, agent


def own_leader(index: LaneIndex) -> I64:
    """Sorted position of each own entry's leader (next entry of the same group), -1 if none."""
    return _same_group(index, index.own_pos + 1)


def own_follower(index: LaneIndex) -> I64:
    """Sorted position of each own entry's follower (previous entry of the same group), -1 if none."""
    return _same_group(index, index.own_pos - 1)


def _same_group(index: LaneIndex, pos: I64) -> I64:
    """``pos`` where that entry exists and shares the own entry's group, else -1."""
    n = index.key.shape[0]
    ok = np.take(index.group, pos, mode="clip") == np.take(index.group, index.own_pos)
    ok &= (pos >= 0) & (pos < n)
    np.copyto(pos, -1, where=~ok)
    return pos.astype(np.int64, copy=False)
