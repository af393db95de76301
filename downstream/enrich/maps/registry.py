"""Map readers by format name, and a set of maps asked in turn.

:data:`FORMATS` names every reader (``lanelet2``, ``commonroad``, ``av2``); :func:`open_map` opens a
file by format name. :class:`MapSet` holds the maps the enrichment service knows and answers with
the first map that covers a trajectory; :meth:`MapSet.context_or_box` falls back to the GNSS box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from downstream.enrich.errors import MapQueryError, NotGeoreferenced, UnknownMapFormat
from downstream.enrich.maps.av2 import load_av2_map
from downstream.enrich.maps.commonroad import load_commonroad_map
from downstream.enrich.maps.context import GeoTrajectory, LocalTrajectory, MapContext, Trajectory, gnss_box
from downstream.enrich.maps.lanelet2 import load_lanelet2
from downstream.enrich.maps.protocol import MapProvider

#: Format name → reader of a file in that format.
FORMATS: dict[str, Callable[[Path], MapProvider]] = {
    "lanelet2": load_lanelet2,
    "commonroad": load_commonroad_map,
    "av2": load_av2_map,
}


def open_map(fmt: str, path: Path | str) -> MapProvider:
    """The map at ``path`` read by the ``fmt`` reader; raises :class:`UnknownMapFormat` or a
    :class:`~downstream.enrich.errors.MapFormatError`."""
    reader = FORMATS.get(fmt)
    if reader is None:
        raise UnknownMapFormat(f"no map reader named {fmt!r} (known: {', '.join(sorted(FORMATS))})")
    return reader(Path(path))


class MapSet:
    """Several maps, asked in order; the first that covers the trajectory answers."""

    def __init__(self, maps: Sequence[MapProvider]) -> None:
        self.maps = tuple(maps)

    def context(self, trajectory: Trajectory, radius_m: float) -> MapContext | None:
        """The first covering map's context; maps that cannot place the query are passed over
        (a WGS-84 query on a local-only map, a local query in another map's frame)."""
        for m in self.maps:
            if isinstance(trajectory, LocalTrajectory) and trajectory.frame != m.frame:
                continue
            try:
                found = m.context(trajectory, radius_m)
            except NotGeoreferenced:
                continue
            if found is not None:
                return found
        return None

    def context_or_box(self, trajectory: GeoTrajectory, radius_m: float) -> MapContext:
        """:meth:`context`, or the GNSS box marked as not covered when no map covers ``trajectory``."""
        if not isinstance(trajectory, GeoTrajectory):
            raise MapQueryError("context_or_box needs a GeoTrajectory (the GNSS box is in WGS-84)")
        return self.context(trajectory, radius_m) or gnss_box(trajectory, radius_m)
