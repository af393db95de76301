"""What the enrichment components read: a segment's scored camera frames, tracks and ego states.

These mirror what a segment and its processed outputs provide, decoded by the service:

- :class:`ScoredFrame`: one ``model/scores`` message of the segment (the vehicle's YOLOX
  detections with COCO class names, and the out-of-distribution score once the vehicle's
  reference was ready).
- :class:`Tracks`: tracked objects as 3D boxes in the vehicle frame (x forward, y left, metres),
  shaped ``(objects, time)`` with a ``valid`` mask.
- :class:`EgoStates`: the vehicle-state stream as arrays (speed, longitudinal acceleration, and
  the planar pose in the local ENU frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError
from shared.payloads import VehicleState

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Detected:
    """One camera detection: class name (COCO for the vehicle's model), score in [0, 1], box in pixels."""

    class_name: str
    score: float
    box_xyxy_px: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ScoredFrame:
    """One scored camera frame at ``t_ns`` (vehicle clock); ``ood_score`` is None before the
    vehicle's out-of-distribution reference was ready."""

    t_ns: int
    detections: tuple[Detected, ...]
    ood_score: float | None = None


def _increasing(t: IntArray, what: str) -> None:
    if t.ndim != 1 or (t.size > 1 and not np.all(np.diff(t) > 0)):
        raise EnrichInputError(f"{what}: t_ns must be a 1-D strictly increasing array")


@dataclass(frozen=True, eq=False)
class Tracks:
    """Tracked objects in the vehicle frame at each time.

    ``track_ids`` and ``kinds`` (class names, e.g. COCO or AV2 categories) have length ``O``;
    ``t_ns`` is ``(T,)`` strictly increasing; ``x_m``, ``y_m`` (box centre), ``yaw_rad``,
    ``length_m``, ``width_m`` and ``valid`` are ``(O, T)``. Values where ``valid`` is False are
    ignored.
    """

    track_ids: tuple[str, ...]
    kinds: tuple[str, ...]
    t_ns: IntArray
    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    length_m: FloatArray
    width_m: FloatArray
    valid: BoolArray

    def __post_init__(self) -> None:
        objects, times = len(self.track_ids), int(self.t_ns.size)
        _increasing(self.t_ns, "tracks")
        if len(self.kinds) != objects:
            raise EnrichInputError(f"tracks: {len(self.kinds)} kinds for {objects} track ids")
        for name in ("x_m", "y_m", "yaw_rad", "length_m", "width_m", "valid"):
            if getattr(self, name).shape != (objects, times):
                raise EnrichInputError(f"tracks: {name} has shape {getattr(self, name).shape}, "
                                       f"expected ({objects}, {times})")

    def time_index(self, t_ns: int) -> int:
        """Index of the track time nearest ``t_ns``; raises when there are no times."""
        if self.t_ns.size == 0:
            raise EnrichInputError("tracks hold no times")
        return int(np.argmin(np.abs(self.t_ns - np.int64(t_ns))))

    def boxes_at(self, index: int) -> FloatArray:
        """``(M, 5)`` boxes ``[x_m, y_m, length_m, width_m, yaw_rad]`` valid at time ``index``."""
        v = self.valid[:, index]
        cols = (self.x_m, self.y_m, self.length_m, self.width_m, self.yaw_rad)
        return np.stack([c[v, index] for c in cols], axis=1).astype(np.float64).reshape(-1, 5)


@dataclass(frozen=True, eq=False)
class EgoStates:
    """The vehicle-state stream as arrays: ``t_ns`` ``(M,)`` strictly increasing, ``speed_mps`` and
    ``accel_mps2`` (longitudinal, negative when braking) ``(M,)``; optionally the planar pose
    ``x_m``, ``y_m``, ``yaw_rad`` ``(M,)`` in a local ENU frame (all three or none)."""

    t_ns: IntArray
    speed_mps: FloatArray
    accel_mps2: FloatArray
    x_m: FloatArray | None = None
    y_m: FloatArray | None = None
    yaw_rad: FloatArray | None = None

    def __post_init__(self) -> None:
        _increasing(self.t_ns, "ego states")
        pose = [a for a in (self.x_m, self.y_m, self.yaw_rad) if a is not None]
        if len(pose) not in (0, 3):
            raise EnrichInputError("ego states: give x_m, y_m and yaw_rad together, or none of them")
        for name, a in (("speed_mps", self.speed_mps), ("accel_mps2", self.accel_mps2), *(("pose", p) for p in pose)):
            if a.shape != self.t_ns.shape:
                raise EnrichInputError(f"ego states: {name} has shape {a.shape}, t_ns {self.t_ns.shape}")

    @property
    def has_pose(self) -> bool:
        """Whether the planar pose is known."""
        return self.x_m is not None

    def pose_at(self, t_ns: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(x_m, y_m, yaw_rad)`` interpolated at ``t_ns`` (held at the ends); needs :attr:`has_pose`."""
        if self.x_m is None or self.y_m is None or self.yaw_rad is None or self.t_ns.size == 0:
            raise EnrichInputError("ego states hold no pose")
        t = (np.asarray(t_ns, dtype=np.int64) - self.t_ns[0]).astype(np.float64)
        ref = (self.t_ns - self.t_ns[0]).astype(np.float64)
        return (np.interp(t, ref, self.x_m), np.interp(t, ref, self.y_m),
                np.interp(t, ref, np.unwrap(self.yaw_rad)))

    @classmethod
    def from_states(cls, t_ns: Sequence[int], states: Sequence[VehicleState]) -> EgoStates:
        """From decoded vehicle states; sorted by time, repeated times keep the first, non-finite dropped."""
        t = np.asarray(t_ns, dtype=np.int64)
        v = np.asarray([(s.speed_mps, s.accel_mps2, s.x_m, s.y_m, s.yaw_rad) for s in states],
                       dtype=np.float64).reshape(-1, 5)
        if t.shape != (v.shape[0],):
            raise EnrichInputError(f"ego states: {t.size} times for {v.shape[0]} states")
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        keep = np.isfinite(v).all(axis=1) & np.concatenate([[True], np.diff(t) > 0])[: t.size]
        t, v = t[keep], v[keep]
        return cls(t, v[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4])
