"""The map-provider contract: a trajectory and a radius in, a :class:`MapContext` (or None) out.

A provider answers ``None`` when its map does not cover the trajectory (no lane within the
radius), raises :class:`~downstream.enrich.errors.NotGeoreferenced` for a WGS-84 query it cannot
place, and :class:`~downstream.enrich.errors.MapQueryError` for a query it cannot answer as asked.
This module imports no implementation (see :mod:`.registry` for those).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from downstream.enrich.maps.context import MapContext, Trajectory


@runtime_checkable
class MapProvider(Protocol):
    """A map that answers radius queries along a trajectory."""

    fmt: str  # the registry name of the map's format, e.g. "lanelet2"
    map_id: str  # which map (file stem, benchmark id, log id)
    frame: str  # the name of the map's own metric frame (the frame of LocalTrajectory queries)

    def context(self, trajectory: Trajectory, radius_m: float) -> MapContext | None:
        """The lanes, crosswalks, stop lines and signals within ``radius_m`` of ``trajectory``."""
        ...
