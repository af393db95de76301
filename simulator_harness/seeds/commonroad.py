"""Import a CommonRoad scenario (XML, format 2018b/2020a) as a seed for simulation.

Lanelets become polylines in metres (left/right bound, centre line) with their adjacency and
successors; dynamic obstacles become one :class:`~simulator_harness.trajectory.Trajectory`
``(agents, time)`` over the file's common time grid, time step ``k`` at ``t_s = k · dt_s``, with
obstacle ids as ``agent_id``, obstacle types as ``kind`` and rectangle sizes. Only
:func:`load_commonroad` touches the disk.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simulator_harness.errors import CommonRoadError
from simulator_harness.trajectory import Trajectory

FloatArray = NDArray[np.float64]
SUPPORTED_VERSIONS = ("2018b", "2020a")


@dataclass(frozen=True, eq=False)
class Lanelet:
    """One lane piece. Bounds and centre line are ``(points, 2)`` arrays of x, y in metres."""

    lanelet_id: int
    left_m: FloatArray
    right_m: FloatArray
    centre_m: FloatArray
    predecessors: tuple[int, ...]
    successors: tuple[int, ...]
    adjacent_left: int | None
    adjacent_right: int | None
    left_marking: str
    right_marking: str


@dataclass(frozen=True, eq=False)
class CommonRoadScenario:
    """A CommonRoad benchmark: id, version, time step in seconds, tags, lanelets, and the dynamic
    obstacles' trajectories ``(agents, time)``.

    ``time_step`` ``(time,)`` numbers the grid as the file does (``t_s = time_step · dt_s``). Where
    ``trajectories.valid`` is False the values are NaN; ``accel_mps2`` may be NaN where the file
    gives no acceleration.
    """

    benchmark_id: str
    version: str
    dt_s: float
    tags: tuple[str, ...]
    lanelets: tuple[Lanelet, ...]
    trajectories: Trajectory
    time_step: NDArray[np.int64]

    def map_bounds_m(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` over every lanelet bound, in metres."""
        pts = np.concatenate([np.vstack((la.left_m, la.right_m)) for la in self.lanelets])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _find(el: ET.Element, path: str, where: str) -> ET.Element:
    found = el.find(path)
    if found is None:
        raise CommonRoadError(f"{where}: missing <{path}>")
    return found


def _number(el: ET.Element, path: str, where: str) -> float:
    text = _find(el, path, where).text
    try:
        return float(text or "")
    except ValueError as exc:
        raise CommonRoadError(f"{where}: <{path}> is not a number: {text!r}") from exc


def _polyline(bound: ET.Element, where: str) -> FloatArray:
    pts = [(_number(p, "x", where), _number(p, "y", where)) for p in bound.findall("point")]
    if len(pts) < 2:
        raise CommonRoadError(f"{where}: a bound needs at least 2 points, got {len(pts)}")
    return np.array(pts, dtype=np.float64)


def _ref(el: ET.Element, tag: str) -> int | None:
    found = el.find(tag)
    return None if found is None else int(found.get("ref", "-1"))


def _lanelet(el: ET.Element) -> Lanelet:
    where = f"lanelet {el.get('id')}"
    left_el, right_el = _find(el, "leftBound", where), _find(el, "rightBound", where)
    left, right = _polyline(left_el, where + " leftBound"), _polyline(right_el, where + " rightBound")
    if left.shape != right.shape:
        raise CommonRoadError(f"{where}: left and right bounds have {len(left)} and {len(right)} points")
    return Lanelet(
        lanelet_id=int(el.get("id", "-1")), left_m=left, right_m=right, centre_m=0.5 * (left + right),
        predecessors=tuple(int(p.get("ref", "-1")) for p in el.findall("predecessor")),
        successors=tuple(int(s.get("ref", "-1")) for s in el.findall("successor")),
        adjacent_left=_ref(el, "adjacentLeft"), adjacent_right=_ref(el, "adjacentRight"),
        left_marking=left_el.findtext("lineMarking", ""), right_marking=right_el.findtext("lineMarking", ""))


def _states(obstacle: ET.Element, where: str) -> list[tuple[int, float, float, float, float, float]]:
    """``(time step, x, y, yaw, speed, accel)`` of the initial state and every trajectory state."""
    elements = [_find(obstacle, "initialState", where), *obstacle.findall("trajectory/state")]
    out = []
    for st in elements:
        if st.find("position/point") is None:
            raise CommonRoadError(f"{where}: only exact point positions are supported (no shapes/intervals)")
        accel = _number(st, "acceleration/exact", where) if st.find("acceleration/exact") is not None \
            else float("nan")
        out.append((int(_number(st, "time/exact", where)), _number(st, "position/point/x", where),
                    _number(st, "position/point/y", where), _number(st, "orientation/exact", where),
                    _number(st, "velocity/exact", where), accel))
    steps = [s[0] for s in out]
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise CommonRoadError(f"{where}: time steps are not strictly increasing")
    return out


def parse_commonroad(xml_text: str | bytes) -> CommonRoadScenario:
    """Parse a CommonRoad XML document. Raises :class:`CommonRoadError` naming what is wrong."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise CommonRoadError(f"not well-formed XML: {exc}") from exc
    if root.tag != "commonRoad":
        raise CommonRoadError(f"root element is <{root.tag}>, expected <commonRoad>")
    version = root.get("commonRoadVersion", "")
    if version not in SUPPORTED_VERSIONS:
        raise CommonRoadError(f"commonRoadVersion {version!r} is not supported (known: {SUPPORTED_VERSIONS})")
    try:
        dt_s = float(root.get("timeStepSize", ""))
    except ValueError as exc:
        raise CommonRoadError(f"timeStepSize {root.get('timeStepSize')!r} is not a number") from exc
    if not dt_s > 0.0:
        raise CommonRoadError(f"timeStepSize must be positive, got {dt_s}")
    lanelets = tuple(_lanelet(el) for el in root.findall("lanelet"))
    if not lanelets:
        raise CommonRoadError("the scenario has no <lanelet>")
    obstacles = root.findall("dynamicObstacle")
    states = [_states(o, f"dynamicObstacle {o.get('id')}") for o in obstacles]
    first = min((s[0][0] for s in states), default=0)
    last = max((s[-1][0] for s in states), default=0)
    steps = np.arange(first, last + 1, dtype=np.int64)
    shape = (len(obstacles), steps.size)
    arrays = [np.full(shape, np.nan) for _ in range(5)]
    valid = np.zeros(shape, dtype=bool)
    for row, obstacle_states in enumerate(states):
        table = np.array(obstacle_states, dtype=np.float64)
        cols = table[:, 0].astype(np.int64) - first
        valid[row, cols] = True
        for k, arr in enumerate(arrays):
            arr[row, cols] = table[:, k + 1]
    sizes = [(_number(o, "shape/rectangle/length", f"dynamicObstacle {o.get('id')}"),
              _number(o, "shape/rectangle/width", f"dynamicObstacle {o.get('id')}")) for o in obstacles]
    trajectories = Trajectory(
        t_s=(steps * dt_s).astype(np.float64), x_m=arrays[0], y_m=arrays[1], yaw_rad=arrays[2],
        speed_mps=arrays[3], accel_mps2=arrays[4], valid=valid,
        agent_id=np.array([int(o.get("id", "-1")) for o in obstacles], dtype=np.int64),
        kind=np.array([o.findtext("type", "unknown") for o in obstacles], dtype=np.str_),
        length_m=np.array([s[0] for s in sizes], dtype=np.float64),
        width_m=np.array([s[1] for s in sizes], dtype=np.float64))
    tag_el = root.find("scenarioTags")
    tags = () if tag_el is None else tuple(child.tag for child in tag_el)
    return CommonRoadScenario(root.get("benchmarkID", ""), version, dt_s, tags, lanelets, trajectories, steps)


def load_commonroad(path: Path) -> CommonRoadScenario:
    """Read and parse the CommonRoad file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommonRoadError(f"cannot read CommonRoad file {path}: {exc}") from exc
    return parse_commonroad(data)
