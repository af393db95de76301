"""Import a CommonRoad scenario (XML, format 2018b or 2020a) as a seed for simulation.

The root's ``commonRoadVersion`` decides how the file is read; any other version (2017a, 2018a,
2020b or later, or none) is refused with :class:`~simulator_harness.seeds.errors.CommonRoadVersionError`
rather than read on a guess. Lanelets become polylines in metres (left/right bound, centre line)
with their adjacency (and its driving direction), successors, types and (2018b) speed limits;
dynamic obstacles (:mod:`simulator_harness.seeds.obstacles` reads both versions' forms) become one
:class:`~simulator_harness.trajectory.Trajectory` ``(agents, time)`` over the file's common time
grid, time step ``k`` at ``t_s = k · dt_s``, with obstacle ids as ``agent_id``, obstacle types as
``kind`` and box sizes; static ones are kept as :class:`StaticObstacle` boxes; ``<intersection>``
elements are kept as their incoming lanelets. Tags come from ``<scenarioTags>`` (2020a) or the
root's ``tags`` attribute (2018b). A file with no dynamic obstacle is
:class:`~simulator_harness.seeds.errors.NoAgentsError`. Only :func:`load_commonroad` touches the disk.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simulator_harness.errors import CommonRoadError
from simulator_harness.seeds.errors import CommonRoadVersionError, NoAgentsError
from simulator_harness.seeds.obstacles import DynamicRecord, StaticObstacle, read_obstacles
from simulator_harness.seeds.xml_fields import child, integer, polyline
from simulator_harness.trajectory import Trajectory

FloatArray = NDArray[np.float64]
SUPPORTED_VERSIONS = ("2018b", "2020a")


@dataclass(frozen=True, eq=False)
class Lanelet:
    """One lane piece. Bounds and centre line are ``(points, 2)`` arrays of x, y in metres.

    ``left_same_direction``/``right_same_direction`` are False where the neighbour is driven the
    other way (``drivingDir="opposite"``); ``types`` are the 2020a ``laneletType`` values;
    ``speed_limit_mps`` is the 2018b ``speedLimit`` (None where the file gives none).
    """

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
    left_same_direction: bool = True
    right_same_direction: bool = True
    types: tuple[str, ...] = ()
    speed_limit_mps: float | None = None


@dataclass(frozen=True, eq=False)
class CommonRoadScenario:
    """A CommonRoad benchmark: id, version, time step in seconds, tags, lanelets, and the dynamic
    obstacles' trajectories ``(agents, time)``.

    ``time_step`` ``(time,)`` numbers the grid as the file does (``t_s = time_step · dt_s``). Where
    ``trajectories.valid`` is False the values are NaN; ``accel_mps2`` may be NaN where the file
    gives no acceleration. ``intersections`` pairs each ``<intersection>`` id with its incoming
    lanelets; ``source`` names where the document came from (the file name), for messages.
    """

    benchmark_id: str
    version: str
    dt_s: float
    tags: tuple[str, ...]
    lanelets: tuple[Lanelet, ...]
    trajectories: Trajectory
    time_step: NDArray[np.int64]
    static_obstacles: tuple[StaticObstacle, ...] = ()
    intersections: tuple[tuple[int, tuple[int, ...]], ...] = ()
    source: str = ""

    def map_bounds_m(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` over every lanelet bound, in metres."""
        pts = np.concatenate([np.vstack((la.left_m, la.right_m)) for la in self.lanelets])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _adjacent(el: ET.Element, tag: str, where: str) -> tuple[int | None, bool]:
    found = el.find(tag)
    if found is None:
        return None, True
    return integer(found, "ref", f"{where} <{tag}>"), found.get("drivingDir", "same") != "opposite"


def _lanelet(el: ET.Element) -> Lanelet:
    where = f"lanelet {el.get('id')}"
    left_el, right_el = child(el, "leftBound", where), child(el, "rightBound", where)
    left, right = polyline(left_el, where + " leftBound"), polyline(right_el, where + " rightBound")
    if left.shape != right.shape:
        raise CommonRoadError(f"{where}: left and right bounds have {len(left)} and {len(right)} points")
    adj_left, left_same = _adjacent(el, "adjacentLeft", where)
    adj_right, right_same = _adjacent(el, "adjacentRight", where)
    limit = el.findtext("speedLimit")
    try:
        speed_limit = None if limit is None else float(limit)
    except ValueError as exc:
        raise CommonRoadError(f"{where}: <speedLimit> is not a number: {limit!r}") from exc
    return Lanelet(
        lanelet_id=integer(el, "id", where), left_m=left, right_m=right, centre_m=0.5 * (left + right),
        predecessors=tuple(integer(p, "ref", where) for p in el.findall("predecessor")),
        successors=tuple(integer(s, "ref", where) for s in el.findall("successor")),
        adjacent_left=adj_left, adjacent_right=adj_right,
        left_marking=left_el.findtext("lineMarking", ""), right_marking=right_el.findtext("lineMarking", ""),
        left_same_direction=left_same, right_same_direction=right_same,
        types=tuple(t.text or "" for t in el.findall("laneletType")), speed_limit_mps=speed_limit)


def _trajectories(records: list[DynamicRecord], dt_s: float) -> tuple[Trajectory, NDArray[np.int64]]:
    first = min(r.states[0][0] for r in records)
    last = max(r.states[-1][0] for r in records)
    steps = np.arange(first, last + 1, dtype=np.int64)
    shape = (len(records), steps.size)
    arrays = [np.full(shape, np.nan) for _ in range(5)]
    valid = np.zeros(shape, dtype=bool)
    for row, record in enumerate(records):
        table = np.array(record.states, dtype=np.float64)
        cols = table[:, 0].astype(np.int64) - first
        valid[row, cols] = True
        for k, arr in enumerate(arrays):
            arr[row, cols] = table[:, k + 1]
    traj = Trajectory(
        t_s=(steps * dt_s).astype(np.float64), x_m=arrays[0], y_m=arrays[1], yaw_rad=arrays[2],
        speed_mps=arrays[3], accel_mps2=arrays[4], valid=valid,
        agent_id=np.array([r.obstacle_id for r in records], dtype=np.int64),
        kind=np.array([r.kind for r in records], dtype=np.str_),
        length_m=np.array([r.length_m for r in records], dtype=np.float64),
        width_m=np.array([r.width_m for r in records], dtype=np.float64))
    return traj, steps


def _version(root: ET.Element, source: str) -> str:
    version = root.get("commonRoadVersion")
    if version is None:
        raise CommonRoadVersionError(f"{source}: the <commonRoad> root has no commonRoadVersion attribute; "
                                     f"this importer reads {' and '.join(SUPPORTED_VERSIONS)}")
    if version not in SUPPORTED_VERSIONS:
        raise CommonRoadVersionError(
            f"{source}: commonRoadVersion {version!r} is not supported (known: {SUPPORTED_VERSIONS}); older "
            "(2017a, 2018a) and newer (2020b on) formats are refused, convert them with commonroad-io first")
    return version


def parse_commonroad(xml_text: str | bytes, source: str = "<document>") -> CommonRoadScenario:
    """Parse a CommonRoad XML document; ``source`` names it in messages. Raises
    :class:`CommonRoadError` (or a subclass from :mod:`simulator_harness.seeds.errors`) naming what
    is wrong."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise CommonRoadError(f"{source}: not well-formed XML: {exc}") from exc
    if root.tag != "commonRoad":
        raise CommonRoadError(f"{source}: root element is <{root.tag}>, expected <commonRoad>")
    version = _version(root, source)
    try:
        dt_s = float(root.get("timeStepSize", ""))
    except ValueError as exc:
        raise CommonRoadError(f"{source}: timeStepSize {root.get('timeStepSize')!r} is not a number") from exc
    if not dt_s > 0.0:
        raise CommonRoadError(f"{source}: timeStepSize must be positive, got {dt_s}")
    try:
        return _scenario(root, version, dt_s, source)
    except CommonRoadError as exc:
        if type(exc) is not CommonRoadError:  # the subclasses name the file already
            raise
        raise CommonRoadError(f"{source}: {exc}") from exc


def _scenario(root: ET.Element, version: str, dt_s: float, source: str) -> CommonRoadScenario:
    lanelets = tuple(_lanelet(el) for el in root.findall("lanelet"))
    if not lanelets:
        raise CommonRoadError("the scenario has no <lanelet>")
    dynamic, static = read_obstacles(root, version)
    if not dynamic:
        form = "<obstacle><role>dynamic</role>" if version == "2018b" else "<dynamicObstacle>"
        raise NoAgentsError(source, f"no dynamic obstacle ({form}) in this {version} file")
    trajectories, steps = _trajectories(dynamic, dt_s)
    if version == "2018b":
        tags = tuple(root.get("tags", "").split())
    else:
        tag_el = root.find("scenarioTags")
        tags = () if tag_el is None else tuple(el.tag for el in tag_el)
    intersections = tuple(
        (integer(el, "id", "intersection"),
         tuple(integer(ref, "ref", f"intersection {el.get('id')}") for ref in el.findall("incoming/incomingLanelet")))
        for el in root.findall("intersection"))
    return CommonRoadScenario(root.get("benchmarkID", ""), version, dt_s, tags, lanelets, trajectories, steps,
                              tuple(static), intersections, source)


def load_commonroad(path: Path) -> CommonRoadScenario:
    """Read and parse the CommonRoad file at ``path`` (messages name it by its file name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommonRoadError(f"cannot read CommonRoad file {path}: {exc}") from exc
    return parse_commonroad(data, path.name)
