"""The road the simulator models, checked against a CommonRoad lanelet network and fitted to it.

The closed loop simulates one straight one-way road of parallel lanes that run its whole length
(:mod:`simulator_harness.closed_loop.road`). :func:`straight_road` straightens a lanelet network
into that road only when it is one; otherwise the first check that fails raises
:class:`~simulator_harness.seeds.errors.RoadNetworkError` naming the lanelet and why:

1. no ``<intersection>`` (its first incoming lanelet is named);
2. every lanelet is for vehicles (not only ``sidewalk``/``crosswalk``/``bicycleLane``);
3. no neighbour is driven the other way (a two-way road);
4. no lanelet has two successors (a fork: an off-ramp or a lane split) or two predecessors (a merge:
   an on-ramp joining);
5. the lanelets form one network whose lane numbering agrees with itself (:func:`lane_numbers`);
6. every centre-line segment of at least 1 m heads within ``MAX_HEADING_DEG`` of the road axis
   (a turn, a bend or a crossing road fails);
7. every lane's chain of lanelets runs the whole road, to within ``max(5 m, 5 %)`` of either end:
   a lane that begins inside the map (an entering ramp) or ends there (a lane drop, the end of an
   acceleration lane) fails;
8. every lanelet's mean width is one a :class:`~simulator_harness.scenario.RoadSpec` takes (2.5..5 m).

Where vehicles go is decided by the lanelet graph and by which lanelet holds them, so what passes
but the simulator draws differently is returned as a warning, not refused: a centre line that
strays more than half a lane width from a straight parallel lane (a ramp converging onto the road,
a gentle bend; the simulator's lane is straight), and two lanelets side by side without an
adjacency between them (a solid line or a barrier, where the simulator lets vehicles change lanes).
The real NGSIM US-101 file has both: its slip road (lanelet 15) starts 4 m right of where lane 0
runs, converges over its first 70 m, runs beside lane 1 (lanelet 12) behind a solid line for 92 m
and then continues as lane 0 (lanelet 16) to the end of the map, so it is a full lane of the
straightened road that nobody has to leave within the recording.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.errors import CommonRoadError
from simulator_harness.seeds.commonroad import CommonRoadScenario, Lanelet
from simulator_harness.seeds.errors import RoadNetworkError

F64 = npt.NDArray[np.float64]
#: A lanelet segment heading further than this from the road axis is not a straight road.
MAX_HEADING_DEG = 15.0
_NOT_FOR_VEHICLES = frozenset({"sidewalk", "crosswalk", "bicycleLane"})
_WIDTH_RANGE_M = (2.5, 5.0)


@dataclass(frozen=True)
class RoadFrame:
    """The straight road fitted to the lanelets: ``origin_xy_m`` is where ``s = 0`` on the axis,
    ``heading_rad`` its direction, ``lanes`` and ``lane_width_m`` the lane layout, and
    ``lane_of`` maps each lanelet id to its lane (0 rightmost)."""

    origin_xy_m: tuple[float, float]
    heading_rad: float
    length_m: float
    lanes: int
    lane_width_m: float
    lane_of: dict[int, int]

    def along_m(self, x_m: F64, y_m: F64) -> F64:
        """Distance along the road axis of world points (any shape), m."""
        c, s = math.cos(self.heading_rad), math.sin(self.heading_rad)
        return np.asarray((x_m - self.origin_xy_m[0]) * c + (y_m - self.origin_xy_m[1]) * s)

    def across_m(self, x_m: F64, y_m: F64) -> F64:
        """Distance to the left of the road axis of world points (any shape), m."""
        c, s = math.cos(self.heading_rad), math.sin(self.heading_rad)
        return np.asarray(-(x_m - self.origin_xy_m[0]) * s + (y_m - self.origin_xy_m[1]) * c)


def lane_numbers(lanelets: tuple[Lanelet, ...]) -> dict[int, int]:
    """Lane of each lanelet, 0 rightmost: right neighbours are one lower, successors keep the lane.

    Raises :class:`CommonRoadError` when the graph contradicts itself (a lanelet reached with two
    different lane numbers)."""
    by_id = {la.lanelet_id: la for la in lanelets}
    lane: dict[int, int] = {}
    for start in by_id:
        if start in lane:
            continue
        lane[start] = 0
        todo = deque([start])
        while todo:
            cur = by_id[todo.popleft()]
            links = [(cur.adjacent_right, -1), (cur.adjacent_left, 1)]
            links += [(n, 0) for n in (*cur.successors, *cur.predecessors)]
            for other, step in links:
                if other is None or other not in by_id:
                    continue
                want = lane[cur.lanelet_id] + step
                if other not in lane:
                    lane[other] = want
                    todo.append(other)
                elif lane[other] != want:
                    raise CommonRoadError(f"lanelet {other}: reached as lane {lane[other]} and as lane {want}; "
                                          "the adjacency graph is not a straight multi-lane road")
    lowest = min(lane.values())
    return {k: v - lowest for k, v in lane.items()}


def _dominant_heading(seg: F64) -> float:
    """The length-weighted mean direction of the centre-line segments ``(n, 2)`` that lie within
    ``MAX_HEADING_DEG`` of the direction most of the length shares (found on a 1° histogram), so
    that at a crossing the longer road sets the axis and the other one is what check 6 names."""
    length = np.linalg.norm(seg, axis=1)
    theta = np.degrees(np.arctan2(seg[:, 1], seg[:, 0]))
    hist = np.bincount(np.floor(theta + 180.0).astype(np.int64) % 360, weights=length, minlength=360)
    reach = int(MAX_HEADING_DEG)
    window = np.array([hist.take(range(b - reach, b + reach + 1), mode="wrap").sum() for b in range(360)])
    centre = float(np.argmax(window)) - 180.0 + 0.5
    inside = np.abs((theta - centre + 180.0) % 360.0 - 180.0) <= MAX_HEADING_DEG + 0.5
    direction = seg[inside].sum(axis=0)
    return math.atan2(float(direction[1]), float(direction[0]))


def road_frame(cr: CommonRoadScenario) -> RoadFrame:
    """Fit the straight road of :class:`RoadFrame` to the scenario's lanelets (no checks)."""
    lane_of = lane_numbers(cr.lanelets)
    seg = np.concatenate([np.diff(la.centre_m, axis=0) for la in cr.lanelets])
    heading = _dominant_heading(seg)
    pts = np.concatenate([np.vstack((la.left_m, la.right_m)) for la in cr.lanelets])
    c, s = math.cos(heading), math.sin(heading)
    along = pts @ np.array([c, s])
    start = pts[int(np.argmin(along))]
    origin = (float(start[0]), float(start[1]))
    width = float(np.mean([np.linalg.norm(la.left_m - la.right_m, axis=1).mean() for la in cr.lanelets]))
    return RoadFrame(origin, heading, float(along.max() - along.min()), max(lane_of.values()) + 1, width, lane_of)


def _topology(cr: CommonRoadScenario) -> None:
    """Checks 1-5 of the module docstring."""
    for inter_id, incoming in cr.intersections:
        first = incoming[0] if incoming else cr.lanelets[0].lanelet_id
        raise RoadNetworkError(first, f"enters intersection {inter_id} (incoming lanelets "
                                      f"{', '.join(map(str, incoming)) or 'none'})")
    by_id = {la.lanelet_id: la for la in cr.lanelets}
    for la in cr.lanelets:
        if la.types and set(la.types) <= _NOT_FOR_VEHICLES:
            raise RoadNetworkError(la.lanelet_id, f"is a {'/'.join(la.types)}, not a vehicle lane")
        for side, ref, same in (("left", la.adjacent_left, la.left_same_direction),
                                ("right", la.adjacent_right, la.right_same_direction)):
            if ref is not None and not same:
                raise RoadNetworkError(la.lanelet_id, f"its {side} neighbour {ref} is driven the other way "
                                                      "(a two-way road)")
        if len(la.successors) > 1:
            raise RoadNetworkError(la.lanelet_id, f"forks into lanelets {', '.join(map(str, la.successors))} "
                                                  "(an off-ramp or a lane split)")
        if len(la.predecessors) > 1:
            raise RoadNetworkError(la.lanelet_id, f"is where lanelets {', '.join(map(str, la.predecessors))} "
                                                  "merge (an on-ramp or a merge)")
        missing = [r for r in (*la.successors, *la.predecessors) if r not in by_id]
        if missing:
            raise RoadNetworkError(la.lanelet_id, f"links to lanelet {missing[0]}, which the file does not hold")
    lane_numbers(cr.lanelets)  # raises when the numbering contradicts itself
    seen = _component(cr.lanelets, cr.lanelets[0].lanelet_id)
    apart = [la.lanelet_id for la in cr.lanelets if la.lanelet_id not in seen]
    if apart:
        raise RoadNetworkError(apart[0], f"is not connected to lanelet {cr.lanelets[0].lanelet_id} (two separate "
                                         "roads)")


def _component(lanelets: tuple[Lanelet, ...], start: int) -> set[int]:
    by_id = {la.lanelet_id: la for la in lanelets}
    seen, todo = {start}, [start]
    while todo:
        la = by_id[todo.pop()]
        for other in (la.adjacent_left, la.adjacent_right, *la.successors, *la.predecessors):
            if other is not None and other in by_id and other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def _geometry(cr: CommonRoadScenario, frame: RoadFrame) -> None:
    """Checks 6-8 of the module docstring."""
    axis = np.array([math.cos(frame.heading_rad), math.sin(frame.heading_rad)])
    for la in cr.lanelets:
        seg = np.diff(la.centre_m, axis=0)
        length = np.linalg.norm(seg, axis=1)
        long = length >= 1.0
        if long.any():
            cos = np.clip((seg[long] @ axis) / length[long], -1.0, 1.0)
            worst = float(np.degrees(np.arccos(cos)).max())
            if worst > MAX_HEADING_DEG:
                raise RoadNetworkError(la.lanelet_id, f"heads {worst:.0f}° off the road axis (more than "
                                                      f"{MAX_HEADING_DEG:g}°: a turn, a bend or a crossing road)")
    along = {la.lanelet_id: frame.along_m(la.centre_m[:, 0], la.centre_m[:, 1]) for la in cr.lanelets}
    lo, hi = min(float(a.min()) for a in along.values()), max(float(a.max()) for a in along.values())
    slack = max(5.0, 0.05 * (hi - lo))
    for lane in range(frame.lanes):
        members = [i for i, k in frame.lane_of.items() if k == lane]
        start = min(members, key=lambda i: float(along[i].min()))
        end = max(members, key=lambda i: float(along[i].max()))
        if float(along[start].min()) > lo + slack:
            raise RoadNetworkError(start, f"starts lane {lane} at s = {float(along[start].min()) - lo:.0f} m of the "
                                          f"{hi - lo:.0f} m road (a lane that begins: an entering ramp)")
        if float(along[end].max()) < hi - slack:
            raise RoadNetworkError(end, f"ends lane {lane} at s = {float(along[end].max()) - lo:.0f} m of the "
                                        f"{hi - lo:.0f} m road (a lane that ends: a lane drop or a merge)")
    for la in cr.lanelets:
        width = float(np.linalg.norm(la.left_m - la.right_m, axis=1).mean())
        if not _WIDTH_RANGE_M[0] <= width <= _WIDTH_RANGE_M[1]:
            raise RoadNetworkError(la.lanelet_id, f"is {width:.2f} m wide, outside {_WIDTH_RANGE_M[0]}.."
                                                  f"{_WIDTH_RANGE_M[1]} m")


def _straightened(cr: CommonRoadScenario, frame: RoadFrame) -> list[str]:
    """Lanelets whose centre line strays from a straight lane parallel to the axis (a ramp that
    converges onto the road, a gentle bend): the simulator's lane is straight there."""
    w = frame.lane_width_m
    across = {la.lanelet_id: frame.across_m(la.centre_m[:, 0], la.centre_m[:, 1]) for la in cr.lanelets}
    base = float(np.median([np.median(across[i]) - frame.lane_of[i] * w for i in across]))
    out = []
    for la in cr.lanelets:
        lane = frame.lane_of[la.lanelet_id]
        off = float(np.abs(across[la.lanelet_id] - (base + lane * w)).max())
        if off > 0.5 * w:
            out.append(f"lanelet {la.lanelet_id} (lane {lane}) strays up to {off:.1f} m from a straight lane parallel "
                       "to the road (it converges onto the road or bends); the simulator's lane is straight")
    return out


def _unlinked_neighbours(cr: CommonRoadScenario, frame: RoadFrame) -> list[str]:
    out = []
    span = {la.lanelet_id: frame.along_m(la.centre_m[:, 0], la.centre_m[:, 1]) for la in cr.lanelets}
    for la in cr.lanelets:
        for other in cr.lanelets:
            if frame.lane_of[other.lanelet_id] != frame.lane_of[la.lanelet_id] + 1:
                continue
            a, b = span[la.lanelet_id], span[other.lanelet_id]
            overlap = min(float(a.max()), float(b.max())) - max(float(a.min()), float(b.min()))
            if overlap > 1.0 and la.adjacent_left != other.lanelet_id and other.adjacent_right != la.lanelet_id:
                out.append(f"lanelets {la.lanelet_id} (lane {frame.lane_of[la.lanelet_id]}) and {other.lanelet_id} "
                           f"(lane {frame.lane_of[other.lanelet_id]}) run side by side for {overlap:.0f} m without "
                           "an adjacency (a solid line or a barrier); the simulator lets vehicles change lanes there")
    return out


def straight_road(cr: CommonRoadScenario) -> tuple[RoadFrame, tuple[str, ...]]:
    """The checked road frame and its warnings (see the module docstring); raises
    :class:`~simulator_harness.seeds.errors.RoadNetworkError` when the network is not such a road."""
    _topology(cr)
    frame = road_frame(cr)
    _geometry(cr, frame)
    return frame, (*_straightened(cr, frame), *_unlinked_neighbours(cr, frame))
