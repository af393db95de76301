"""A parsed map in its own metric frame, and the radius query every map reader shares.

Readers (:mod:`.lanelet2`, :mod:`.commonroad`, :mod:`.av2`) turn a file into :class:`MapFeatures`;
:meth:`MapFeatures.context` answers a query. A feature is in the context when any of its
geometry lies within ``radius_m`` of the trajectory (the trajectory is resampled to a point every
``min(2 m, radius / 4)`` along its path first, so a distance is exact to that spacing's half). A map
*covers* a trajectory when at least one lane lies within the radius; otherwise the answer is None.
Features come out nearest first (ties by id), so the same query gives the same context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import MapQueryError, NotGeoreferenced
from downstream.enrich.maps.context import (
    Crosswalk,
    GeoTrajectory,
    Lane,
    MapContext,
    Signal,
    StopLine,
    Trajectory,
    as_points,
)
from downstream.enrich.maps.geo import LocalProjection

FloatArray = npt.NDArray[np.float64]
_MAX_PAIRS = 4_000_000  # trajectory points × segments per distance block


@dataclass(frozen=True, eq=False)
class MapLane:
    """A lane as read: ``centre_m`` ``(N, 2)`` in driving order; see :class:`~.context.Lane`."""

    lane_id: str
    lane_type: str
    centre_m: FloatArray
    speed_limit_mps: float | None = None
    speed_limit_source: str = ""
    in_intersection: bool | None = None


@dataclass(frozen=True, eq=False)
class MapShape:
    """A crosswalk outline or a stop line as read, ``points_m`` ``(N, 2)``."""

    feature_id: str
    points_m: FloatArray


@dataclass(frozen=True, eq=False)
class MapSignal:
    """A traffic light or sign as read, ``position_m`` ``(2,)``."""

    signal_id: str
    kind: str
    position_m: FloatArray
    stop_line_id: str | None = None


def resample(xy: FloatArray, spacing_m: float) -> FloatArray:
    """Points along the polyline ``xy`` ``(N, 2)`` at equal arc-length steps of at most ``spacing_m``
    (sparse fixes are filled in, dense ones thinned; both ends kept)."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if s[-1] <= 0:
        return xy[:1]
    at = np.linspace(0.0, s[-1], int(np.ceil(s[-1] / spacing_m)) + 1)
    return np.stack([np.interp(at, s, xy[:, 0]), np.interp(at, s, xy[:, 1])], axis=1)


class _Segments:
    """Every polyline of one feature kind as segments ``a → b`` ``(S, 2)`` with their owner index."""

    def __init__(self, polylines: Sequence[FloatArray]) -> None:
        a, b, owner = [], [], []
        for i, line in enumerate(polylines):
            pts = np.asarray(line, dtype=np.float64).reshape(-1, 2)
            ends = pts[1:] if len(pts) > 1 else pts
            a.append(pts[:-1] if len(pts) > 1 else pts)
            b.append(ends)
            owner.append(np.full(len(ends), i))
        self.count = len(polylines)
        self.a = np.concatenate(a) if a else np.zeros((0, 2))
        self.b = np.concatenate(b) if b else np.zeros((0, 2))
        self.owner = np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64)
        self.lo, self.hi = np.minimum(self.a, self.b), np.maximum(self.a, self.b)

    def distances(self, pts: FloatArray, radius_m: float) -> FloatArray:
        """Each owner's closest approach to ``pts`` ``(N, 2)``; inf beyond the radius box."""
        out = np.full(self.count, np.inf)
        near = np.all((self.hi >= pts.min(axis=0) - radius_m) & (self.lo <= pts.max(axis=0) + radius_m), axis=1)
        a, b, owner = self.a[near], self.b[near], self.owner[near]
        if not len(a):
            return out
        ab = b - a
        den = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
        best = np.full(len(a), np.inf)
        step = max(1, _MAX_PAIRS // len(a))
        for k in range(0, len(pts), step):
            p = pts[k:k + step, None, :]
            u = np.clip(np.sum((p - a) * ab, axis=2) / den, 0.0, 1.0)
            d = np.hypot(*np.moveaxis(p - (a + u[..., None] * ab), 2, 0))
            best = np.minimum(best, d.min(axis=0))
        np.minimum.at(out, owner, best)
        return out


def _order(d: FloatArray, ids: Sequence[str], radius_m: float) -> list[int]:
    return sorted((i for i in range(len(ids)) if d[i] <= radius_m), key=lambda i: (float(d[i]), ids[i]))


class MapFeatures:
    """One map: lanes, crosswalks, stop lines, signals in metres in ``frame``.

    ``projection`` places the frame on WGS-84 (None: the map answers local queries only);
    ``georeference`` says how well (``"wgs84"`` or ``"approximate"``, see :class:`~.context.MapContext`).
    """

    def __init__(self, fmt: str, map_id: str, frame: str, lanes: Sequence[MapLane],
                 crosswalks: Sequence[MapShape] = (), stop_lines: Sequence[MapShape] = (),
                 signals: Sequence[MapSignal] = (), road_classes: Sequence[str] = (),
                 projection: LocalProjection | None = None, georeference: str = "wgs84") -> None:
        self.fmt, self.map_id, self.frame = fmt, map_id, frame
        self.lanes, self.crosswalks = tuple(lanes), tuple(crosswalks)
        self.stop_lines, self.signals = tuple(stop_lines), tuple(signals)
        self.road_classes = tuple(road_classes)
        self.projection, self.georeference = projection, georeference
        self._lane_segs = _Segments([la.centre_m for la in self.lanes])
        self._cross_segs = _Segments([np.vstack([c.points_m, c.points_m[:1]]) for c in self.crosswalks])
        self._stop_segs = _Segments([s.points_m for s in self.stop_lines])
        self._signal_segs = _Segments([s.position_m for s in self.signals])

    def _place(self, trajectory: Trajectory) -> tuple[FloatArray, str]:
        if isinstance(trajectory, GeoTrajectory):
            if self.projection is None:
                raise NotGeoreferenced(f"{self.fmt} map {self.map_id!r} has no georeference; query it with a "
                                       f"LocalTrajectory in frame {self.frame!r}")
            return self.projection.to_local(trajectory.lat_deg, trajectory.lon_deg), self.georeference
        if trajectory.frame != self.frame:
            raise MapQueryError(f"trajectory is in frame {trajectory.frame!r}, {self.fmt} map {self.map_id!r} "
                                f"is in {self.frame!r}")
        return np.asarray(trajectory.xy_m, dtype=np.float64), "local"

    def context(self, trajectory: Trajectory, radius_m: float) -> MapContext | None:
        """The features within ``radius_m`` of ``trajectory``, or None when no lane is that close."""
        if not (np.isfinite(radius_m) and radius_m > 0):
            raise MapQueryError(f"radius_m must be a positive number of metres, got {radius_m}")
        xy, georeference = self._place(trajectory)
        pts = resample(xy, min(2.0, radius_m / 4))
        lane_d = self._lane_segs.distances(pts, radius_m)
        lanes = _order(lane_d, [la.lane_id for la in self.lanes], radius_m)
        if not lanes:
            return None
        cross_d = self._cross_segs.distances(pts, radius_m)
        stop_d = self._stop_segs.distances(pts, radius_m)
        signal_d = self._signal_segs.distances(pts, radius_m)

        def dist(d: FloatArray, i: int) -> float:
            return round(float(d[i]), 3)

        origin = self.projection
        return MapContext(
            covered=True, source=self.fmt, map_id=self.map_id, frame=self.frame, georeference=georeference,
            radius_m=float(radius_m), origin_lat_deg=None if origin is None else origin.origin_lat_deg,
            origin_lon_deg=None if origin is None else origin.origin_lon_deg, trajectory_m=as_points(xy),
            lanes=tuple(Lane(la.lane_id, la.lane_type, as_points(la.centre_m), la.speed_limit_mps,
                             la.speed_limit_source, la.in_intersection, dist(lane_d, i))
                        for i in lanes for la in (self.lanes[i],)),
            crosswalks=tuple(Crosswalk(self.crosswalks[i].feature_id, as_points(self.crosswalks[i].points_m),
                                       dist(cross_d, i))
                             for i in _order(cross_d, [c.feature_id for c in self.crosswalks], radius_m)),
            stop_lines=tuple(StopLine(self.stop_lines[i].feature_id, as_points(self.stop_lines[i].points_m),
                                      dist(stop_d, i))
                             for i in _order(stop_d, [s.feature_id for s in self.stop_lines], radius_m)),
            signals=tuple(Signal(s.signal_id, s.kind, (round(float(s.position_m[0]), 3),
                                                       round(float(s.position_m[1]), 3)),
                                 s.stop_line_id, dist(signal_d, i))
                          for i in _order(signal_d, [s.signal_id for s in self.signals], radius_m)
                          for s in (self.signals[i],)),
            road_classes=self.road_classes)
