"""CommonRoad obstacles in both supported formats: dynamic ones as recorded states, static ones as boxes.

The two formats differ only in how an obstacle says what it is:

* **2020a**: ``<dynamicObstacle id>`` and ``<staticObstacle id>``;
* **2018b**: ``<obstacle id>`` whose first child ``<role>`` is ``dynamic`` or ``static``.

Either way an obstacle has ``<type>``, ``<shape>`` (a rectangle ``length``/``width``, or a circle
``radius``, read as a ``2r`` square) and ``<initialState>``; a dynamic one adds a ``<trajectory>``
of ``<state>``s, or an ``<occupancySet>`` (a set-based prediction, refused here: it records no
motion). ``<environmentObstacle>`` and ``<phantomObstacle>`` (2020a: buildings, pillars, placeholders)
are not road users and are not read. An element of the other version's form (``<obstacle>`` in a
2020a file, ``<dynamicObstacle>`` in a 2018b one) is an error: the declared version is wrong, and
reading it either way would guess.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from simulator_harness.errors import CommonRoadError
from simulator_harness.seeds.xml_fields import child, integer, number

#: One recorded state: ``(time step, x m, y m, yaw rad, speed m/s, accel m/s²)``; accel may be NaN.
State = tuple[int, float, float, float, float, float]


@dataclass(frozen=True)
class StaticObstacle:
    """A standing obstacle: its box centre ``x_m``/``y_m``, heading, size and CommonRoad type."""

    obstacle_id: int
    kind: str
    x_m: float
    y_m: float
    yaw_rad: float
    length_m: float
    width_m: float


@dataclass(frozen=True)
class DynamicRecord:
    """A dynamic obstacle as the file records it: type, size and its states in time order."""

    obstacle_id: int
    kind: str
    length_m: float
    width_m: float
    states: tuple[State, ...]


def _shape(obstacle: ET.Element, where: str) -> tuple[float, float]:
    shape = child(obstacle, "shape", where)
    parts = list(shape)
    if len(parts) != 1:
        raise CommonRoadError(f"{where}: <shape> holds {len(parts)} shapes; give one rectangle or circle")
    part = parts[0]
    if part.tag == "rectangle":
        return number(part, "length", where), number(part, "width", where)
    if part.tag == "circle":
        diameter = 2.0 * number(part, "radius", where)
        return diameter, diameter
    raise CommonRoadError(f"{where}: a <{part.tag}> shape is not supported; give a rectangle or circle")


def _pose(st: ET.Element, where: str) -> tuple[float, float, float]:
    if st.find("position/point") is None:
        raise CommonRoadError(f"{where}: only exact point positions are supported (no shapes/intervals)")
    return (number(st, "position/point/x", where), number(st, "position/point/y", where),
            number(st, "orientation/exact", where))


def _state(st: ET.Element, where: str) -> State:
    x, y, yaw = _pose(st, where)
    accel = number(st, "acceleration/exact", where) if st.find("acceleration/exact") is not None else float("nan")
    return (int(number(st, "time/exact", where)), x, y, yaw, number(st, "velocity/exact", where), accel)


def _dynamic(obstacle: ET.Element, tag: str) -> DynamicRecord:
    where = f"{tag} {obstacle.get('id')}"
    if obstacle.find("trajectory") is None and obstacle.find("occupancySet") is not None:
        raise CommonRoadError(f"{where}: has a set-based prediction (<occupancySet>) and no <trajectory>; "
                              "only recorded trajectories can seed a simulation")
    elements = [child(obstacle, "initialState", where), *obstacle.findall("trajectory/state")]
    states = tuple(_state(st, where) for st in elements)
    if any(b[0] <= a[0] for a, b in itertools.pairwise(states)):
        raise CommonRoadError(f"{where}: time steps are not strictly increasing")
    length, width = _shape(obstacle, where)
    return DynamicRecord(integer(obstacle, "id", where), obstacle.findtext("type", "unknown"), length, width, states)


def _static(obstacle: ET.Element, tag: str) -> StaticObstacle:
    where = f"{tag} {obstacle.get('id')}"
    x, y, yaw = _pose(child(obstacle, "initialState", where), where)
    length, width = _shape(obstacle, where)
    return StaticObstacle(integer(obstacle, "id", where), obstacle.findtext("type", "unknown"), x, y, yaw,
                          length, width)


def read_obstacles(root: ET.Element, version: str) -> tuple[list[DynamicRecord], list[StaticObstacle]]:
    """The dynamic and static obstacles of a ``<commonRoad>`` root written in ``version``."""
    if version == "2018b":
        newer = [el.tag for el in root if el.tag in ("dynamicObstacle", "staticObstacle")]
        if newer:
            raise CommonRoadError(f"a 2018b file holds <{newer[0]}> elements, the 2020a form; check its "
                                  "commonRoadVersion")
        dynamic, static = [], []
        for el in root.findall("obstacle"):
            role = el.findtext("role")
            if role == "dynamic":
                dynamic.append(_dynamic(el, "obstacle"))
            elif role == "static":
                static.append(_static(el, "obstacle"))
            else:
                raise CommonRoadError(f"obstacle {el.get('id')}: <role> is {role!r}, expected 'dynamic' or 'static'")
        return dynamic, static
    if root.find("obstacle") is not None:
        raise CommonRoadError(f"a {version} file holds <obstacle> elements, the 2018b form; check its "
                              "commonRoadVersion")
    return ([_dynamic(el, "dynamicObstacle") for el in root.findall("dynamicObstacle")],
            [_static(el, "staticObstacle") for el in root.findall("staticObstacle")])
