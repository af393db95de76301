"""Reading CommonRoad XML fields with errors that name the element: a child that must exist, a
number, a point list. Every failure is a :class:`~simulator_harness.errors.CommonRoadError`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from numpy.typing import NDArray

from simulator_harness.errors import CommonRoadError


def child(el: ET.Element, path: str, where: str) -> ET.Element:
    """The element at ``path`` under ``el``; ``where`` names ``el`` in the error."""
    found = el.find(path)
    if found is None:
        raise CommonRoadError(f"{where}: missing <{path}>")
    return found


def number(el: ET.Element, path: str, where: str) -> float:
    """The text at ``path`` as a float."""
    text = child(el, path, where).text
    try:
        return float(text or "")
    except ValueError as exc:
        raise CommonRoadError(f"{where}: <{path}> is not a number: {text!r}") from exc


def integer(el: ET.Element, attr: str, where: str) -> int:
    """The attribute ``attr`` of ``el`` as an int (ids and references)."""
    text = el.get(attr)
    try:
        return int(text or "")
    except ValueError as exc:
        raise CommonRoadError(f"{where}: attribute {attr}={text!r} is not an integer") from exc


def polyline(bound: ET.Element, where: str) -> NDArray[np.float64]:
    """The ``<point>`` children of ``bound`` as a ``(points, 2)`` array of x, y in metres."""
    pts = [(number(p, "x", where), number(p, "y", where)) for p in bound.findall("point")]
    if len(pts) < 2:
        raise CommonRoadError(f"{where}: a bound needs at least 2 points, got {len(pts)}")
    return np.array(pts, dtype=np.float64)
