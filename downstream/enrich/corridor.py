"""Tracked objects in path coordinates: how far ahead along the ego's own path, and how far beside it.

The ego lane is taken to be the corridor along the path the vehicle actually drove next, not its
current x axis: on a curve the lane bends with the path, and after an ego lane change the target
lane is the corridor, so neither fakes a cut-in. For track time ``i``, the path is the ego's
positions at the track times from ``i`` on, extended straight along the last heading by
:data:`EXTEND_M` (the segment ends before the road does). Each object is projected onto that
polyline: ``s`` is the arc length to its foot point (metres ahead; negative behind the start),
``d`` the signed distance from it (left positive), ``heading`` its yaw relative to the path there.

Without an ego pose the path is the vehicle's x axis at each time: ``s = x``, ``d = y``, ``heading
= yaw`` (objects are in the vehicle frame), the straight-road approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from downstream.enrich.records import EgoStates, FloatArray, Tracks

EXTEND_M = 80.0


@dataclass(frozen=True, eq=False)
class PathCoords:
    """``s_m``, ``d_m``, ``heading_rad`` ``(objects, time)``; NaN where the track is not valid."""

    s_m: FloatArray
    d_m: FloatArray
    heading_rad: FloatArray


def _wrap(a: FloatArray) -> FloatArray:
    return np.asarray((a + np.pi) % (2 * np.pi) - np.pi, dtype=np.float64)


def _project(px: FloatArray, py: FloatArray, path: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Arc length, signed offset and path heading at the foot point of each point ``(N,)`` on ``path``."""
    a, b = path[:-1], path[1:]
    ab = b - a
    seg_len = np.maximum(np.hypot(ab[:, 0], ab[:, 1]), 1e-9)
    start = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
    p = np.stack([px, py], axis=1)[:, None, :]
    u = np.sum((p - a) * ab, axis=2) / seg_len**2
    # Before the first segment keep u < 0 (behind the vehicle); clamp elsewhere.
    u = np.where(np.arange(len(a)) == 0, np.minimum(u, 1.0), np.clip(u, 0.0, 1.0))
    foot = a + u[..., None] * ab
    dist = np.hypot(*np.moveaxis(p - foot, 2, 0))
    k = np.argmin(dist, axis=1)
    rows = np.arange(len(px))
    cross = ab[k, 0] * (py - a[k, 1]) - ab[k, 1] * (px - a[k, 0])
    return (start[k] + u[rows, k] * seg_len[k], np.sign(cross) * dist[rows, k],
            np.arctan2(ab[k, 1], ab[k, 0]))


def path_coords(tracks: Tracks, ego: EgoStates | None = None) -> PathCoords:
    """Every track's path coordinates (see the module docstring)."""
    if ego is None or not ego.has_pose or tracks.t_ns.size == 0:
        return PathCoords(np.where(tracks.valid, tracks.x_m, np.nan), np.where(tracks.valid, tracks.y_m, np.nan),
                          np.where(tracks.valid, _wrap(tracks.yaw_rad), np.nan))
    ex, ey, eyaw = ego.pose_at(tracks.t_ns)
    c, s = np.cos(eyaw), np.sin(eyaw)
    wx = ex + c * tracks.x_m - s * tracks.y_m  # (O, T) world positions
    wy = ey + s * tracks.x_m + c * tracks.y_m
    out = [np.full(tracks.x_m.shape, np.nan) for _ in range(3)]
    for i in range(tracks.t_ns.size):
        rows = np.flatnonzero(tracks.valid[:, i])
        if not rows.size:
            continue
        pts = np.stack([ex[i:], ey[i:]], axis=1)
        keep = [0]
        for j in range(1, len(pts)):  # drop standstill repeats, which give a path no direction
            if np.hypot(*(pts[j] - pts[keep[-1]])) > 0.2:
                keep.append(j)
        pts = pts[keep]
        head = eyaw[i] if len(pts) < 2 else float(np.arctan2(*(pts[-1] - pts[-2])[::-1]))
        path = np.vstack([pts, pts[-1] + EXTEND_M * np.array([np.cos(head), np.sin(head)])])
        s_m, d_m, path_yaw = _project(wx[rows, i], wy[rows, i], path)
        out[0][rows, i], out[1][rows, i] = s_m, d_m
        out[2][rows, i] = _wrap(eyaw[i] + tracks.yaw_rad[rows, i] - path_yaw)
    return PathCoords(*out)
