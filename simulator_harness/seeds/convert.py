"""Real seeds: a CommonRoad recording (the NGSIM US-101 file) as a closed-loop :class:`ScenarioSpec`.

The lanelets are straightened into the spec's straight multi-lane road: the lane count is the
widest set of side-by-side lanelets, lanes are numbered from the right by walking the lanelet graph
(``adjacent_right`` is one lane lower, successors keep their lane), the lane width is the lanelets'
mean width, and the road runs along the lanelets' length-weighted mean heading. Each recorded
vehicle becomes an actor at its first recorded state: its lane from the lanelet that contains it,
``s_m`` along the road axis, ``d_m`` its signed offset from that lanelet's centre line. The road is
extended downstream so the traffic can keep driving for the whole recording. One recorded vehicle
(by default the longest track, upstream first) becomes the ego under test.
:func:`spec_to_xosc` turns any all-vehicle spec into OpenSCENARIO.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.errors import CommonRoadError, ScenarioExportError
from simulator_harness.scenario.spec import (
    Actor,
    ActorKind,
    EgoSpec,
    EventKind,
    Intent,
    RoadSpec,
    ScenarioSpec,
)
from simulator_harness.seeds.commonroad import CommonRoadScenario, Lanelet
from simulator_harness.seeds.openscenario import XoscActor, XoscEvent, XoscScenario, XoscTimeOfDay
from simulator_harness.trajectory import require

F64 = npt.NDArray[np.float64]
#: A recorded vehicle longer than this (m) is a truck in the spec.
TRUCK_LENGTH_M = 8.0
_MIN_SPEED_LIMIT_MPS = 29.0  # US-101: 65 mph


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


def road_frame(cr: CommonRoadScenario) -> RoadFrame:
    """Fit the straight road of :class:`RoadFrame` to the scenario's lanelets."""
    lane_of = lane_numbers(cr.lanelets)
    seg = np.concatenate([np.diff(la.centre_m, axis=0) for la in cr.lanelets])
    length = np.linalg.norm(seg, axis=1)
    direction = (seg / np.maximum(length, 1e-9)[:, None] * length[:, None]).sum(axis=0)
    heading = math.atan2(float(direction[1]), float(direction[0]))
    pts = np.concatenate([np.vstack((la.left_m, la.right_m)) for la in cr.lanelets])
    c, s = math.cos(heading), math.sin(heading)
    along = pts @ np.array([c, s])
    start = pts[int(np.argmin(along))]
    origin = (float(start[0]), float(start[1]))
    width = float(np.mean([np.linalg.norm(la.left_m - la.right_m, axis=1).mean() for la in cr.lanelets]))
    return RoadFrame(origin, heading, float(along.max() - along.min()), max(lane_of.values()) + 1, width, lane_of)


def _inside(lanelet: Lanelet, x: float, y: float) -> bool:
    """Point-in-polygon (crossing number) on the lanelet outline: left bound, then right reversed."""
    poly = np.vstack((lanelet.left_m, lanelet.right_m[::-1]))
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_x = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(straddles & (x < cross_x)) % 2)


def _offset_m(lanelet: Lanelet, x: float, y: float) -> float:
    """Signed distance (m, + to the left) from the lanelet's centre line to a point."""
    a, b = lanelet.centre_m[:-1], lanelet.centre_m[1:]
    ab = b - a
    t = np.clip(((np.array([x, y]) - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-12), 0, 1)
    foot = a + t[:, None] * ab
    k = int(np.argmin(np.hypot(foot[:, 0] - x, foot[:, 1] - y)))
    rel = np.array([x, y]) - a[k]
    return float(ab[k, 0] * rel[1] - ab[k, 1] * rel[0]) / max(float(np.hypot(*ab[k])), 1e-9)


@dataclass(frozen=True)
class Seed:
    """A seed spec and how it was made: the frame, which recorded obstacle is the ego, and the
    obstacles left out because no lanelet contains their first position."""

    spec: ScenarioSpec
    frame: RoadFrame
    ego_obstacle_id: int
    skipped_obstacle_ids: tuple[int, ...]


def seed_from_commonroad(cr: CommonRoadScenario, ego_obstacle_id: int | None = None, name: str | None = None,
                         duration_s: float | None = None) -> Seed:
    """The recording as a closed-loop spec (see the module docstring)."""
    frame = road_frame(cr)
    tr = cr.trajectories
    if tr.n_agents < 1:
        raise CommonRoadError(f"{cr.benchmark_id}: no dynamic obstacle to seed from")
    first = np.argmax(tr.valid, axis=1)
    rows = np.arange(tr.n_agents)
    x0, y0 = tr.x_m[rows, first], tr.y_m[rows, first]
    s0 = frame.along_m(x0, y0)
    ids = [int(i) for i in require(tr.agent_id, "agent_id")]
    lengths = require(tr.length_m, "length_m")
    if ego_obstacle_id is None:
        ego_row = int(np.lexsort((s0, -tr.valid.sum(axis=1)))[0])
    elif ego_obstacle_id in ids:
        ego_row = ids.index(ego_obstacle_id)
    else:
        raise CommonRoadError(f"{cr.benchmark_id}: no obstacle {ego_obstacle_id} (known: {ids})")
    by_id = {la.lanelet_id: la for la in cr.lanelets}
    placed: dict[int, tuple[int, float]] = {}
    for row in rows.tolist():
        home = next((la for la in cr.lanelets if _inside(la, float(x0[row]), float(y0[row]))), None)
        if home is not None:
            offset = _offset_m(by_id[home.lanelet_id], float(x0[row]), float(y0[row]))
            placed[row] = (frame.lane_of[home.lanelet_id], float(np.clip(offset, -1.0, 1.0)))
    if ego_row not in placed:
        raise CommonRoadError(f"{cr.benchmark_id}: the ego obstacle {ids[ego_row]} starts outside every lanelet")
    top_speed = float(np.nanmax(tr.speed_mps))
    limit = max(_MIN_SPEED_LIMIT_MPS, math.ceil(top_speed))
    length_s = duration_s if duration_s is not None else float(tr.t_s[-1] - tr.t_s[0])
    road = RoadSpec(lanes=frame.lanes, lane_width_m=round(frame.lane_width_m, 2),
                    length_m=round(frame.length_m + limit * length_s + 50.0),
                    speed_limit_mps=float(limit))
    actors = []
    for row in rows.tolist():
        if row == ego_row or row not in placed:
            continue
        lane, d = placed[row]
        track = tr.speed_mps[row][tr.valid[row]]
        kind = ActorKind.TRUCK if lengths[row] > TRUCK_LENGTH_M else ActorKind.CAR
        actors.append(Actor(name=f"obstacle_{ids[row]}", kind=kind, lane=lane, s_m=round(float(s0[row]), 3),
                            speed_mps=round(float(tr.speed_mps[row, first[row]]), 3), intent=Intent.KEEP_LANE,
                            d_m=round(d, 3), desired_speed_mps=round(float(track.max()), 3)))
    ego_lane, _ = placed[ego_row]
    ego = EgoSpec(lane=ego_lane, s_m=round(float(s0[ego_row]), 3),
                  speed_mps=round(float(tr.speed_mps[ego_row, first[ego_row]]), 3),
                  desired_speed_mps=float(limit))
    spec = ScenarioSpec(name=name or cr.benchmark_id.replace("-", "_") or "commonroad_seed", road=road, ego=ego,
                        actors=tuple(actors), duration_s=round(length_s, 3),
                        description=f"CommonRoad {cr.benchmark_id}: {len(actors)} recorded vehicles, ego is "
                                    f"obstacle {ids[ego_row]}")
    skipped = tuple(ids[r] for r in rows.tolist() if r not in placed)
    return Seed(spec, frame, ids[ego_row], skipped)


def spec_to_xosc(spec: ScenarioSpec) -> XoscScenario:
    """An all-vehicle spec as OpenSCENARIO: road ``0`` with OpenDRIVE lane ids ``-1`` (leftmost) to
    ``-lanes`` (rightmost, our lane 0); cut-ins become lane changes, hard brakes speed actions."""
    def lane_id(lane: int) -> int:
        return -(spec.road.lanes - lane)

    actors = [XoscActor("ego", spec.ego.speed_mps, lane_id=lane_id(spec.ego.lane), s_m=spec.ego.s_m)]
    for a in spec.actors:
        if a.kind not in (ActorKind.CAR, ActorKind.TRUCK) or a.lane >= spec.road.lanes:
            raise ScenarioExportError(f"{spec.name}: actor {a.name!r} ({a.kind}, lane {a.lane}) is not a vehicle "
                                      "on the main road; only such specs export to OpenSCENARIO here")
        length, width = (10.0, 2.5) if a.kind is ActorKind.TRUCK else (4.6, 1.9)
        actors.append(XoscActor(a.name, a.speed_mps, lane_id=lane_id(a.lane), s_m=a.s_m, length_m=length,
                                width_m=width, height_m=3.5 if a.kind is ActorKind.TRUCK else 1.5))
    lanes = {a.name: a.lane for a in spec.actors}
    events = []
    for e in spec.events:
        if e.kind is EventKind.CUT_IN:
            offset = spec.ego.lane - lanes[e.actor]  # + is to the left: OpenDRIVE ids grow leftwards
            if offset:
                events.append(XoscEvent(e.t_s, e.actor, "lane_change",
                                        {"lane_offset": float(offset), "duration_s": 3.0}))
        elif e.kind is EventKind.LEAD_HARD_BRAKE:
            speed = next(a.speed_mps for a in spec.actors if a.name == e.actor)
            events.append(XoscEvent(e.t_s, e.actor, "speed",
                                    {"speed_mps": 0.0, "duration_s": speed / e.param("decel_mps2")}))
        else:
            raise ScenarioExportError(f"{spec.name}: event {e.kind} has no OpenSCENARIO mapping here")
    clock = {"day": "12:00:00", "dusk": "19:30:00", "night": "23:00:00"}[spec.time_of_day.value]
    return XoscScenario(name=spec.name, duration_s=spec.duration_s, actors=tuple(actors), events=tuple(events),
                        time_of_day=XoscTimeOfDay(date_time=f"2024-06-01T{clock}"),
                        description=spec.description or spec.name)
