"""Oriented boxes: corners and the separating-axis overlap test, broadcast over any array shape.

A box is ``(x_m, y_m, yaw_rad, length_m, width_m)`` with its centre at ``(x, y)`` and its length
along ``yaw``. Two convex boxes are disjoint iff one of the four edge normals separates their
projections (separating axis theorem).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Box: TypeAlias = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]

_SIGNS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])


def corners(box: Box) -> F64:
    """Corners ``(..., 4, 2)`` of boxes, counter-clockwise from front-left."""
    x, y, yaw, length, width = (np.asarray(v, dtype=np.float64) for v in box)
    c, s = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    hl = (0.5 * length)[..., None] * _SIGNS[:, 0]
    hw = (0.5 * width)[..., None] * _SIGNS[:, 1]
    return np.stack([x[..., None] + hl * c - hw * s, y[..., None] + hl * s + hw * c], axis=-1)


def boxes_overlap(a: Box, b: Box) -> npt.NDArray[np.bool_]:
    """Whether boxes ``a`` and ``b`` (broadcast together) overlap; touching counts as no overlap."""
    ca, cb = corners(a), corners(b)
    ca, cb = np.broadcast_arrays(ca, cb)
    separated = np.zeros(ca.shape[:-2], dtype=bool)
    for yaw in (np.asarray(a[2], dtype=np.float64), np.asarray(b[2], dtype=np.float64)):
        for axis_angle in (yaw, yaw + np.pi / 2):
            ax = np.cos(axis_angle)[..., None]
            ay = np.sin(axis_angle)[..., None]
            pa = ca[..., 0] * ax + ca[..., 1] * ay
            pb = cb[..., 0] * ax + cb[..., 1] * ay
            separated |= (pa.max(-1) <= pb.min(-1) + 1e-9) | (pb.max(-1) <= pa.min(-1) + 1e-9)
    return ~separated
