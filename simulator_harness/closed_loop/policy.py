"""Ego policies under test: a ``Protocol`` and two reference implementations.

:class:`IDMEgo` perceives whatever body overlaps its lane corridor ahead (a cutting-in car, a
crossing pedestrian, a red-light runner) and the signal, and follows it with IDM.
:class:`BlindEgo` holds its speed whatever happens: a baseline that any safety metric must fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.idm import IDMParams, idm_accel
from simulator_harness.closed_loop.state import EgoAction, SimState
from simulator_harness.closed_loop.step import SimParams
from simulator_harness.trajectory import EGO

F64 = npt.NDArray[np.float64]


class EgoPolicy(Protocol):
    """Decides the ego's action for every scenario of the batch from the current state."""

    def act(self, state: SimState, params: SimParams) -> EgoAction:
        """Action for this step; ``accel_mps2`` and ``lane_change`` are ``(S,)``."""
        ...


@dataclass(frozen=True)
class BlindEgo:
    """Constant speed, straight on, ignoring everyone and every signal."""

    def act(self, state: SimState, params: SimParams) -> EgoAction:
        """Zero acceleration, no lane change."""
        n_s = state.shape[0]
        return EgoAction(accel_mps2=np.zeros(n_s), lane_change=np.zeros(n_s, dtype=np.int64))


@dataclass(frozen=True)
class IDMEgo:
    """IDM toward the nearest body overlapping the ego's lane corridor ahead, or a red stop line.

    ``corridor_margin_m`` widens the corridor on each side, so a cut-in is seen as soon as its
    body is that close to the ego's path.
    """

    idm: IDMParams = field(default_factory=IDMParams)
    corridor_margin_m: float = 0.3
    lookahead_m: float = 150.0

    def act(self, state: SimState, params: SimParams) -> EgoAction:
        """IDM acceleration toward the nearest threat in the corridor; never changes lanes."""
        road = params.road
        gap, v_lead = self.corridor_leader(state, params)
        v = state.speed_mps[:, EGO]
        v0 = state.v0_mps[:, EGO]
        acc = idm_accel(v, v0, gap, v - v_lead, self.idm)
        lane = np.maximum(state.lane[:, EGO], 0)
        stop = road.stop_line_s_m[lane]
        if np.isfinite(stop).any():
            gap_stop = stop - state.s_m[:, EGO] - state.length_m[:, EGO] * 0.5
            red = ~road.green(state.t_s)[lane]
            can_stop = (v * v <= 2.0 * self.idm.stop_decel_max_mps2 * np.maximum(gap_stop, 0.1)) | (v < 1.0)
            stopping = red & (gap_stop >= 0.0) & can_stop
            acc = np.where(stopping, np.minimum(acc, idm_accel(v, v0, gap_stop, v, self.idm)), acc)
        return EgoAction(accel_mps2=acc, lane_change=np.zeros(acc.shape[0], dtype=np.int64))

    def corridor_leader(self, state: SimState, params: SimParams) -> tuple[F64, F64]:
        """Per scenario: bumper gap (m, ``inf`` if none) to the nearest body in the corridor ahead,
        and that body's speed along the ego's lane (m/s).

        A body's half extents along and across the lane never exceed ``(length + width) / 2``, so
        bodies outside the corridor grown by that bound are dropped before any trigonometry; the
        exact test then runs, element for element the same arithmetic, on the few left."""
        h = params.road.heading_rad[np.maximum(state.lane[:, EGO], 0)][:, None]
        ch, sh = np.cos(h), np.sin(h)
        dx = state.x_m - state.x_m[:, EGO:EGO + 1]
        dy = state.y_m - state.y_m[:, EGO:EGO + 1]
        along = dx * ch + dy * sh
        across = -dx * sh + dy * ch
        ego_half_w = 0.5 * state.width_m[:, EGO:EGO + 1]
        ego_half_l = 0.5 * state.length_m[:, EGO:EGO + 1]
        reach = 0.5 * (state.length_m + state.width_m)  # >= either half extent, in floating point too
        near = (state.valid & (along > 0) & (along - ego_half_l - reach < self.lookahead_m)
                & (np.abs(across) < ego_half_w + reach + self.corridor_margin_m))
        near[:, EGO] = False
        idx = np.flatnonzero(near)
        n_a = state.shape[1]
        row = idx // n_a
        rel = state.yaw_rad.ravel()[idx] - h[row, 0]
        cos_rel = np.cos(rel)
        c, s = np.abs(cos_rel), np.abs(np.sin(rel))
        length, width = state.length_m.ravel()[idx], state.width_m.ravel()[idx]
        half_along = 0.5 * (c * length + s * width)
        half_across = 0.5 * (s * length + c * width)
        gap_c = along.ravel()[idx] - ego_half_l[row, 0] - half_along
        inside = ((np.abs(across.ravel()[idx]) < ego_half_w[row, 0] + half_across + self.corridor_margin_m)
                  & (gap_c < self.lookahead_m))
        gap = np.full(state.shape, np.inf)
        gap.ravel()[idx[inside]] = gap_c[inside]
        j = np.argmin(gap, axis=1)
        rows = np.arange(gap.shape[0])
        best = gap[rows, j]
        v_along = np.zeros(state.shape)
        v_along.ravel()[idx] = state.speed_mps.ravel()[idx] * cos_rel
        return best, np.where(np.isfinite(best), v_along[rows, j], 0.0)
