"""Road geometry as arrays: straight lane centre lines, adjacency, speed limits and signals.

Every lane is a straight centre line ``origin + s·(cos h, sin h)`` sampled into
``centre_xy_m`` (lanes, points, 2). The main road runs along +x with lane ``i`` centred at
``y = i·lane_width_m`` (lane 0 rightmost, lanes to the left have larger ``y``). At an intersection
the crossing road runs along +y through ``x = length_m / 2``; its lanes follow the main ones.
Signals: group 0 (main road) is green for ``[0, main_green_s)`` of each cycle, group 1 (crossing
road) for the rest; there is no amber phase (drivers who cannot stop comfortably go on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.scenario.spec import RoadSpec, RoadType

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_STOP_LINE_SETBACK_M = 2.0
_POINTS_PER_LANE = 64


@dataclass(frozen=True)
class Road:
    """Lane arrays shared by every scenario of a batch. Shapes: ``(L,)`` unless stated."""

    spec: RoadSpec
    origin_xy_m: F64  # (L, 2) start of each centre line
    heading_rad: F64  # direction of travel
    length_m: F64
    width_m: float
    left_lane: I64  # lane index to the left, -1 if none
    right_lane: I64  # lane index to the right, -1 if none
    speed_limit_mps: F64
    stop_line_s_m: F64  # arc length of the stop line, +inf where the lane has no signal
    signal_group: I64  # -1: no signal, 0: main road, 1: crossing road
    is_main: B  # lanes of the main road (along +x), onto which crossing users are projected
    centre_xy_m: F64  # (L, P, 2) sampled centre lines
    cos_heading: F64
    sin_heading: F64

    @property
    def n_lanes(self) -> int:
        """Number of lanes L."""
        return int(self.heading_rad.shape[0])

    @property
    def n_main(self) -> int:
        """Number of main-road lanes (they are lanes ``0..n_main-1``)."""
        return int(self.spec.lanes)

    def green(self, t_s: float | F64) -> npt.NDArray[np.bool_]:
        """Whether each lane's signal shows green at ``t_s``: shape ``(L,)`` or ``(T, L)`` for a (T,) time array."""
        phase = np.mod(np.asarray(t_s, dtype=np.float64), self.spec.signal_cycle_s)[..., None]
        main_green = phase < self.spec.main_green_s
        return np.where(self.signal_group == 0, main_green,
                        np.where(self.signal_group == 1, ~main_green, True))

    def on_road(self, x_m: F64, y_m: F64) -> npt.NDArray[np.bool_]:
        """Whether points (any shape) lie on the drivable surface (the union of lane strips)."""
        x = np.asarray(x_m, dtype=np.float64)[..., None]
        y = np.asarray(y_m, dtype=np.float64)[..., None]
        c, s = np.cos(self.heading_rad), np.sin(self.heading_rad)
        dx, dy = x - self.origin_xy_m[:, 0], y - self.origin_xy_m[:, 1]
        along = dx * c + dy * s
        across = -dx * s + dy * c
        inside = (along >= 0) & (along <= self.length_m) & (np.abs(across) <= self.width_m / 2 + 1e-9)
        return np.asarray(inside.any(axis=-1))


def build_road(spec: RoadSpec) -> Road:
    """Lay out the lanes of ``spec`` (see the module docstring for the frame)."""
    w = spec.lane_width_m
    n = spec.lanes
    origins = [(0.0, i * w) for i in range(n)]
    headings = [0.0] * n
    lengths = [spec.length_m] * n
    left = [i + 1 if i + 1 < n else -1 for i in range(n)]
    right = [i - 1 for i in range(n)]
    stop = [np.inf] * n
    group = [-1] * n
    if spec.kind is RoadType.INTERSECTION:
        c = spec.cross_lanes
        x_centre = spec.length_m / 2
        main_half = n * w / 2
        cross_len = spec.length_m / 2
        y_mid = (n - 1) * w / 2
        cross_x0 = x_centre - (c - 1) * w / 2
        # Crossing lanes run along +y; the lane to a northbound driver's left has smaller x.
        origins += [(cross_x0 + j * w, y_mid - cross_len / 2) for j in range(c)]
        headings += [np.pi / 2] * c
        lengths += [cross_len] * c
        left += [n + j - 1 if j > 0 else -1 for j in range(c)]
        right += [n + j + 1 if j + 1 < c else -1 for j in range(c)]
        stop = [x_centre - c * w / 2 - _STOP_LINE_SETBACK_M] * n
        stop += [cross_len / 2 - main_half - _STOP_LINE_SETBACK_M] * c
        group = [0] * n + [1] * c
    origin = np.asarray(origins, dtype=np.float64)
    heading = np.asarray(headings, dtype=np.float64)
    length = np.asarray(lengths, dtype=np.float64)
    frac = np.linspace(0.0, 1.0, _POINTS_PER_LANE)
    direction = np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    centre = origin[:, None, :] + (frac[None, :, None] * length[:, None, None]) * direction[:, None, :]
    total = len(headings)
    return Road(
        spec=spec, origin_xy_m=origin, heading_rad=heading, length_m=length, width_m=float(w),
        left_lane=np.asarray(left, dtype=np.int64), right_lane=np.asarray(right, dtype=np.int64),
        speed_limit_mps=np.full(total, spec.speed_limit_mps), stop_line_s_m=np.asarray(stop, dtype=np.float64),
        signal_group=np.asarray(group, dtype=np.int64), is_main=np.arange(total) < n, centre_xy_m=centre,
        cos_heading=np.cos(heading), sin_heading=np.sin(heading),
    )
