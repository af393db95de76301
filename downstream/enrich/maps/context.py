"""Map context: the lanes, crosswalks, stop lines and signals within a radius of a trajectory.

A :class:`MapContext` is what a :class:`~downstream.enrich.maps.protocol.MapProvider` answers. Its
geometry is in metres in the context's ``frame``: for a WGS-84 query, the map provider's local
east-north frame about ``origin_lat_deg``/``origin_lon_deg`` (see
:class:`~downstream.enrich.maps.geo.LocalProjection`); for a local query, the map's own frame.
``trajectory_m`` is the query in that frame, so a consumer can place the segment on the map.
``distance_m`` on every feature is its closest approach to the trajectory.

Where no map covers the trajectory, :func:`gnss_box` keeps the GNSS bounding box and says so
(``covered`` False, ``source`` ``"gnss_box"``). :meth:`MapContext.to_body` is the JSON document for
the segment's processed outputs; :meth:`MapContext.summary` the small dict of plain strings and
numbers ``Segment.map_context`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import MapQueryError

Points = tuple[tuple[float, float], ...]
GNSS_BOX = "gnss_box"


def as_points(a: npt.ArrayLike) -> Points:
    """``(N, 2)`` metres as a tuple of ``(x, y)`` pairs rounded to millimetres."""
    return tuple((round(float(x), 3), round(float(y), 3)) for x, y in np.asarray(a, dtype=np.float64).reshape(-1, 2))


def _lists(points: Points) -> list[list[float]]:
    return [[x, y] for x, y in points]


def _tuples(value: Any) -> Points:
    return tuple((float(x), float(y)) for x, y in value)


@dataclass(frozen=True, eq=False)
class GeoTrajectory:
    """Where a segment drove, as WGS-84 degrees ``(N,)`` (its GNSS fixes)."""

    lat_deg: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        lat, lon = np.asarray(self.lat_deg, np.float64), np.asarray(self.lon_deg, np.float64)
        if lat.ndim != 1 or lat.shape != lon.shape or lat.size == 0:
            raise MapQueryError(f"a trajectory needs matching non-empty 1-D lat/lon, got {lat.shape}, {lon.shape}")
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()) or np.abs(lat).max() > 90 \
                or np.abs(lon).max() > 180:
            raise MapQueryError("trajectory latitudes must be finite within ±90°, longitudes within ±180°")


@dataclass(frozen=True, eq=False)
class LocalTrajectory:
    """Where a segment drove, as ``(N, 2)`` metres in a map's own ``frame`` (e.g. an AV2 city frame)."""

    xy_m: npt.NDArray[np.float64]
    frame: str

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy_m, np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0 or not np.isfinite(xy).all():
            raise MapQueryError(f"a local trajectory needs finite (N, 2) metres, N >= 1, got {xy.shape}")


Trajectory = GeoTrajectory | LocalTrajectory


@dataclass(frozen=True, slots=True)
class Lane:
    """A lane piece: centre line in driving order, type as the map names it, speed limit if known.

    ``speed_limit_source`` is ``"map"`` (the map says), ``"country_default"`` (the traffic rules
    of the map's region, e.g. 50 km/h in a German town) or ``""`` (unknown). ``in_intersection``
    is None where the map format does not say.
    """

    lane_id: str
    lane_type: str
    centre_m: Points
    speed_limit_mps: float | None
    speed_limit_source: str
    in_intersection: bool | None
    distance_m: float


@dataclass(frozen=True, slots=True)
class Crosswalk:
    """A pedestrian crossing: its outline polygon."""

    crosswalk_id: str
    outline_m: Points
    distance_m: float


@dataclass(frozen=True, slots=True)
class StopLine:
    """A stop line (a polyline across the lanes)."""

    stop_line_id: str
    points_m: Points
    distance_m: float


@dataclass(frozen=True, slots=True)
class Signal:
    """A traffic light or sign: ``kind`` such as ``traffic_light:red_yellow_green`` or
    ``traffic_sign:de205``; the stop line it governs when the map links one."""

    signal_id: str
    kind: str
    position_m: tuple[float, float]
    stop_line_id: str | None
    distance_m: float


@dataclass(frozen=True, eq=False)
class MapContext:
    """See the module docstring. ``georeference`` is ``"wgs84"`` (the map is georeferenced),
    ``"approximate"`` (a WGS-84 query placed on a map by a location point, not a georeference),
    ``"local"`` (a query in the map's own frame) or ``"none"`` (a GNSS box, no map)."""

    covered: bool
    source: str
    map_id: str
    frame: str
    georeference: str
    radius_m: float
    origin_lat_deg: float | None
    origin_lon_deg: float | None
    trajectory_m: Points
    lanes: tuple[Lane, ...] = ()
    crosswalks: tuple[Crosswalk, ...] = ()
    stop_lines: tuple[StopLine, ...] = ()
    signals: tuple[Signal, ...] = ()
    road_classes: tuple[str, ...] = ()
    gnss_box: tuple[float, float, float, float] | None = None  # lat_min, lon_min, lat_max, lon_max

    def to_body(self) -> dict[str, Any]:
        """A JSON-ready document (metres rounded to millimetres)."""
        return {
            "covered": self.covered, "source": self.source, "map_id": self.map_id, "frame": self.frame,
            "georeference": self.georeference, "radius_m": self.radius_m,
            "origin_lat_deg": self.origin_lat_deg, "origin_lon_deg": self.origin_lon_deg,
            "trajectory_m": _lists(self.trajectory_m),
            "lanes": [{"lane_id": la.lane_id, "lane_type": la.lane_type, "centre_m": _lists(la.centre_m),
                       "speed_limit_mps": la.speed_limit_mps, "speed_limit_source": la.speed_limit_source,
                       "in_intersection": la.in_intersection, "distance_m": la.distance_m} for la in self.lanes],
            "crosswalks": [{"crosswalk_id": c.crosswalk_id, "outline_m": _lists(c.outline_m),
                            "distance_m": c.distance_m} for c in self.crosswalks],
            "stop_lines": [{"stop_line_id": s.stop_line_id, "points_m": _lists(s.points_m),
                            "distance_m": s.distance_m} for s in self.stop_lines],
            "signals": [{"signal_id": s.signal_id, "kind": s.kind, "position_m": list(s.position_m),
                         "stop_line_id": s.stop_line_id, "distance_m": s.distance_m} for s in self.signals],
            "road_classes": list(self.road_classes),
            "gnss_box": None if self.gnss_box is None else list(self.gnss_box),
        }

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> MapContext:
        """The inverse of :meth:`to_body`; raises :class:`MapQueryError` on a malformed document."""
        try:
            box = b.get("gnss_box")
            return cls(
                covered=bool(b["covered"]), source=str(b["source"]), map_id=str(b["map_id"]), frame=str(b["frame"]),
                georeference=str(b["georeference"]), radius_m=float(b["radius_m"]),
                origin_lat_deg=b.get("origin_lat_deg"), origin_lon_deg=b.get("origin_lon_deg"),
                trajectory_m=_tuples(b["trajectory_m"]),
                lanes=tuple(Lane(str(la["lane_id"]), str(la["lane_type"]), _tuples(la["centre_m"]),
                                 la["speed_limit_mps"], str(la["speed_limit_source"]), la["in_intersection"],
                                 float(la["distance_m"])) for la in b["lanes"]),
                crosswalks=tuple(Crosswalk(str(c["crosswalk_id"]), _tuples(c["outline_m"]), float(c["distance_m"]))
                                 for c in b["crosswalks"]),
                stop_lines=tuple(StopLine(str(s["stop_line_id"]), _tuples(s["points_m"]), float(s["distance_m"]))
                                 for s in b["stop_lines"]),
                signals=tuple(Signal(str(s["signal_id"]), str(s["kind"]), (float(s["position_m"][0]),
                                     float(s["position_m"][1])), s["stop_line_id"], float(s["distance_m"]))
                              for s in b["signals"]),
                road_classes=tuple(str(r) for r in b["road_classes"]),
                gnss_box=None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3])))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MapQueryError(f"map context document is malformed: {exc!r}") from exc

    def summary(self) -> dict[str, Any]:
        """Plain strings and numbers for ``Segment.map_context`` (counts, not geometry)."""
        limits = sorted({la.speed_limit_mps for la in self.lanes if la.speed_limit_mps is not None})
        out: dict[str, Any] = {"source": self.source, "covered": self.covered, "map_id": self.map_id,
                               "georeference": self.georeference, "radius_m": self.radius_m,
                               "lanes": len(self.lanes), "crosswalks": len(self.crosswalks),
                               "stop_lines": len(self.stop_lines),
                               "traffic_lights": sum(s.kind.startswith("traffic_light") for s in self.signals),
                               "traffic_signs": sum(s.kind.startswith("traffic_sign") for s in self.signals),
                               "speed_limits_mps": [round(v, 2) for v in limits],
                               "road_classes": ",".join(self.road_classes)}
        if self.gnss_box is not None:
            out.update(zip(("lat_min_deg", "lon_min_deg", "lat_max_deg", "lon_max_deg"), self.gnss_box, strict=True))
        return out


def gnss_box(trajectory: GeoTrajectory, radius_m: float) -> MapContext:
    """The context where no map covers ``trajectory``: its bounding box, marked as not covered."""
    lat, lon = np.asarray(trajectory.lat_deg), np.asarray(trajectory.lon_deg)
    return MapContext(covered=False, source=GNSS_BOX, map_id="", frame="wgs84", georeference="none",
                      radius_m=float(radius_m), origin_lat_deg=None, origin_lon_deg=None, trajectory_m=(),
                      gnss_box=(float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())))

