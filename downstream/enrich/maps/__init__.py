"""Map context for a segment: HD-map readers behind one Protocol, and the radius query they share.

:mod:`.protocol` is the contract (:class:`MapProvider`); :mod:`.context` the answer
(:class:`MapContext` with lanes, crosswalks, stop lines and signals) and the GNSS-box fallback;
:mod:`.geo` the WGS-84 ↔ local-metres projection; :mod:`.features` the query every reader shares;
:mod:`.lanelet2`, :mod:`.commonroad` and :mod:`.av2` the readers; :mod:`.registry` names them.
"""

from downstream.enrich.maps.av2 import load_av2_map, parse_av2_map
from downstream.enrich.maps.commonroad import load_commonroad_map, parse_commonroad_map
from downstream.enrich.maps.context import (
    GNSS_BOX,
    Crosswalk,
    GeoTrajectory,
    Lane,
    LocalTrajectory,
    MapContext,
    Signal,
    StopLine,
    Trajectory,
    gnss_box,
)
from downstream.enrich.maps.features import MapFeatures, MapLane, MapShape, MapSignal
from downstream.enrich.maps.geo import LocalProjection
from downstream.enrich.maps.lanelet2 import load_lanelet2, parse_lanelet2
from downstream.enrich.maps.protocol import MapProvider
from downstream.enrich.maps.registry import FORMATS, MapSet, open_map

__all__ = [
    "FORMATS",
    "GNSS_BOX",
    "Crosswalk",
    "GeoTrajectory",
    "Lane",
    "LocalProjection",
    "LocalTrajectory",
    "MapContext",
    "MapFeatures",
    "MapLane",
    "MapProvider",
    "MapSet",
    "MapShape",
    "MapSignal",
    "Signal",
    "StopLine",
    "Trajectory",
    "gnss_box",
    "load_av2_map",
    "load_commonroad_map",
    "load_lanelet2",
    "open_map",
    "parse_av2_map",
    "parse_commonroad_map",
    "parse_lanelet2",
]
