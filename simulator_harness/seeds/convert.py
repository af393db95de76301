"""Real seeds: a CommonRoad recording (such as the NGSIM US-101 file) as a closed-loop :class:`ScenarioSpec`.

The lanelet network must be the simulator's road: :func:`~simulator_harness.seeds.network.straight_road`
checks it and straightens it (lane count, lanes numbered from the right by the lanelet graph, mean
lane width, the lanelets' length-weighted mean heading as the road axis), or raises
:class:`~simulator_harness.seeds.errors.RoadNetworkError` naming the lanelet that is not such a road;
its warnings (what the straight road draws differently) come back on the :class:`Seed`.

Each recorded road user becomes an actor at its first recorded state: its lane from the lanelet
that contains it, ``s_m`` along the road axis, ``d_m`` its signed offset from that lanelet's centre
line; its kind from its CommonRoad type (:func:`actor_kind`: cars, and trucks by type or length,
keep their lane by IDM; bicycles ride; pedestrians walk); a static parked vehicle on a lanelet
stands as a parked car or truck. Obstacles the simulator does not model (trains, construction
zones, an obstacle outside every lanelet) are skipped with the reason. No road user on the road at
all is :class:`~simulator_harness.seeds.errors.NoAgentsError`. The road is extended downstream so
the traffic can keep driving for the whole recording; its speed limit is the file's (2018b
``speedLimit``), else 29 m/s (US-101: 65 mph), raised to the fastest recorded speed. One recorded
vehicle (by default the longest track on the road, upstream first) becomes the ego under test.

So that ``search`` and ``risk`` have something to vary, the spec carries truncated-normal
variations of ``±spread`` (25 %) on the ego's initial speed and, when a recorded vehicle leads it in
its lane, on that lead's initial speed and gap (never closer than 12 m centre to centre, so no
sample starts with bodies overlapping). :func:`spec_to_xosc` turns any all-vehicle spec into
OpenSCENARIO.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from simulator_harness.errors import CommonRoadError, ScenarioExportError
from simulator_harness.scenario.spec import (
    Actor,
    ActorKind,
    Dist,
    EgoSpec,
    EventKind,
    Intent,
    RoadSpec,
    ScenarioSpec,
    Variation,
)
from simulator_harness.seeds.commonroad import CommonRoadScenario, Lanelet
from simulator_harness.seeds.errors import NoAgentsError
from simulator_harness.seeds.network import RoadFrame, lane_numbers, road_frame, straight_road
from simulator_harness.seeds.openscenario import XoscActor, XoscEvent, XoscScenario, XoscTimeOfDay
from simulator_harness.trajectory import Trajectory, require

__all__ = ["SEED_SPREAD", "TRUCK_LENGTH_M", "RoadFrame", "Seed", "actor_kind", "lane_numbers", "recorded_tracks",
           "road_frame", "seed_from_commonroad", "spec_to_xosc"]

#: A recorded vehicle longer than this (m) is a truck in the spec.
TRUCK_LENGTH_M = 8.0
#: Default relative spread of the seed's variations.
SEED_SPREAD = 0.25
_MIN_SPEED_LIMIT_MPS = 29.0  # US-101: 65 mph
_MIN_LEAD_GAP_M = 12.0  # centre to centre: a 10 m truck and a car still clear each other
_CARS = frozenset({"car", "truck", "bus", "priorityVehicle", "taxi", "vehicle", "parkedVehicle"})
_AS_CAR = frozenset({"motorcycle", "unknown"})  # moving on the road, nearest simulated kind: a car


def actor_kind(obstacle_type: str, length_m: float) -> tuple[ActorKind | None, str]:
    """The simulator kind of a CommonRoad obstacle type, and a note: why it is skipped (kind None)
    or how it is approximated (empty when it maps as it is)."""
    if obstacle_type in _CARS or obstacle_type in _AS_CAR:
        big = obstacle_type in ("truck", "bus") or length_m > TRUCK_LENGTH_M
        note = f"a {obstacle_type} is simulated as a car" if obstacle_type in _AS_CAR else ""
        return (ActorKind.TRUCK if big else ActorKind.CAR), note
    if obstacle_type == "bicycle":
        return ActorKind.CYCLIST, ""
    if obstacle_type == "pedestrian":
        return ActorKind.PEDESTRIAN, ""
    return None, f"a {obstacle_type} is not a road user the simulator models"


def recorded_tracks(cr: CommonRoadScenario) -> Trajectory:
    """The recorded road users the simulator models, ``(agents, time)``, with ``kind`` set to their
    :class:`ActorKind` values (what :func:`~simulator_harness.assessment.plausibility.check_recorded`
    takes)."""
    tr = cr.trajectories
    kinds = [actor_kind(str(k), float(n))[0] for k, n in zip(require(tr.kind, "kind"), require(tr.length_m,
                                                                                          "length_m"), strict=True)]
    rows = [r for r, k in enumerate(kinds) if k is not None]
    picked = tr.agents(rows)
    return dataclasses.replace(picked, kind=np.array([str(kinds[r]) for r in rows], dtype=np.str_))


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
    """A seed spec and how it was made: the frame, which recorded obstacle is the ego, the obstacles
    left out with the reason (``(obstacle id, why)``), and what the straight road or the kinds draw
    differently from the file (``warnings``)."""

    spec: ScenarioSpec
    frame: RoadFrame
    ego_obstacle_id: int
    skipped: tuple[tuple[int, str], ...]
    warnings: tuple[str, ...] = ()

    @property
    def skipped_obstacle_ids(self) -> tuple[int, ...]:
        """Ids of the obstacles left out."""
        return tuple(i for i, _ in self.skipped)


@dataclass(frozen=True)
class _Placed:
    obstacle_id: int
    kind: ActorKind
    lane: int
    s_m: float
    d_m: float
    speed_mps: float
    top_speed_mps: float
    steps: int  # recorded samples; the default ego is the longest track
    parked: bool


def _home(cr: CommonRoadScenario, frame: RoadFrame, x: float, y: float) -> tuple[int, float] | None:
    home = next((la for la in cr.lanelets if _inside(la, x, y)), None)
    if home is None:
        return None
    return frame.lane_of[home.lanelet_id], float(np.clip(_offset_m(home, x, y), -1.0, 1.0))


def _place(cr: CommonRoadScenario, frame: RoadFrame) -> tuple[list[_Placed], list[tuple[int, str]], list[str]]:
    """Every obstacle the simulator models, at its first state on a lanelet; the rest with reasons."""
    tr = cr.trajectories
    placed: list[_Placed] = []
    skipped: list[tuple[int, str]] = []
    notes: list[str] = []
    first = np.argmax(tr.valid, axis=1)
    ids, kinds, lengths = require(tr.agent_id, "agent_id"), require(tr.kind, "kind"), require(tr.length_m, "length_m")
    for row in range(tr.n_agents):
        oid, k = int(ids[row]), int(first[row])
        kind, note = actor_kind(str(kinds[row]), float(lengths[row]))
        where = None if kind is None else _home(cr, frame, float(tr.x_m[row, k]), float(tr.y_m[row, k]))
        if kind is None or where is None:
            skipped.append((oid, note if kind is None else "starts outside every lanelet"))
            continue
        notes += [f"obstacle {oid}: {note}"] if note else []
        speeds = tr.speed_mps[row][tr.valid[row]]
        placed.append(_Placed(oid, kind, where[0], float(frame.along_m(tr.x_m[row, k], tr.y_m[row, k])), where[1],
                              float(tr.speed_mps[row, k]), float(speeds.max()), int(tr.valid[row].sum()), False))
    for ob in cr.static_obstacles:
        kind, note = actor_kind(ob.kind, ob.length_m)
        if kind not in (ActorKind.CAR, ActorKind.TRUCK):
            skipped.append((ob.obstacle_id, note or f"a static {ob.kind} is not a road user the simulator models"))
            continue
        where = _home(cr, frame, ob.x_m, ob.y_m)
        if where is None:
            skipped.append((ob.obstacle_id, "stands outside every lanelet"))
            continue
        s_m = float(frame.along_m(np.array(ob.x_m), np.array(ob.y_m)))
        placed.append(_Placed(ob.obstacle_id, kind, where[0], s_m, where[1], 0.0, 0.0, 1, True))
    return placed, skipped, notes


def _ego(placed: list[_Placed], skipped: list[tuple[int, str]], wanted: int | None, source: str) -> _Placed:
    movers = [p for p in placed if not p.parked and p.kind in (ActorKind.CAR, ActorKind.TRUCK)]
    if wanted is None:
        if not movers:
            raise NoAgentsError(source, "no recorded car or truck on the road to be the ego")
        return min(movers, key=lambda p: (-p.steps, p.s_m))
    chosen = next((p for p in placed if p.obstacle_id == wanted), None)
    if chosen is None:
        why = dict(skipped).get(wanted) or "no such obstacle (known: " + \
            ", ".join(str(p.obstacle_id) for p in movers) + ")"
        raise CommonRoadError(f"{source}: obstacle {wanted} cannot be the ego: {why}")
    if chosen not in movers:
        raise CommonRoadError(f"{source}: obstacle {wanted} cannot be the ego: it is a "
                              f"{'parked ' if chosen.parked else ''}{chosen.kind}; pick a recorded moving car or truck")
    return chosen


def _around(key: str, value: float, spread: float, lo_min: float = 0.0, hi_max: float = math.inf) -> list[Variation]:
    half = spread * max(abs(value), 5.0)
    lo, hi = round(max(lo_min, value - half), 3), round(min(hi_max, value + half), 3)
    return [Variation(key, lo, hi, Dist.NORMAL)] if lo < hi else []


def _variations(ego: EgoSpec, actors: list[Actor], spread: float) -> tuple[Variation, ...]:
    """The seed's variations (see the module docstring)."""
    if spread <= 0.0:
        return ()
    out = _around("ego.speed_mps", ego.speed_mps, spread)
    lane = sorted((a for a in actors if a.lane == ego.lane and a.s_m > ego.s_m), key=lambda a: a.s_m)
    if lane and lane[0].kind in (ActorKind.CAR, ActorKind.TRUCK) and lane[0].intent is not Intent.PARKED:
        lead = lane[0]
        out += _around(f"actors.{lead.name}.speed_mps", lead.speed_mps, spread)
        gap = lead.s_m - ego.s_m
        beyond = lane[1].s_m - _MIN_LEAD_GAP_M if len(lane) > 1 else math.inf
        lo, hi = ego.s_m + max(gap * (1 - spread), _MIN_LEAD_GAP_M), min(ego.s_m + gap * (1 + spread), beyond)
        if lo < lead.s_m < hi:
            out.append(Variation(f"actors.{lead.name}.s_m", round(lo, 3), round(hi, 3), Dist.NORMAL))
    return tuple(out)


def seed_from_commonroad(cr: CommonRoadScenario, ego_obstacle_id: int | None = None, name: str | None = None,
                         duration_s: float | None = None, spread: float = SEED_SPREAD) -> Seed:
    """The recording as a closed-loop spec (see the module docstring). Raises
    :class:`~simulator_harness.seeds.errors.RoadNetworkError`, :class:`NoAgentsError` or
    :class:`CommonRoadError` naming what does not fit."""
    source = cr.source or cr.benchmark_id or "the CommonRoad document"
    if not 0.0 <= spread < 1.0:
        raise CommonRoadError(f"spread must lie in [0, 1), got {spread}")
    frame, road_notes = straight_road(cr)
    placed, skipped, notes = _place(cr, frame)
    if not placed:
        raise NoAgentsError(source, f"none of its {cr.trajectories.n_agents + len(cr.static_obstacles)} obstacles is "
                                    "a road user the simulator models on a lanelet")
    ego = _ego(placed, skipped, ego_obstacle_id, source)
    if ego.kind is ActorKind.TRUCK:
        notes.append(f"obstacle {ego.obstacle_id}: the ego is a recorded truck; the simulator drives its ego as a car")
    file_limits = [la.speed_limit_mps for la in cr.lanelets if la.speed_limit_mps is not None]
    top_mps = max(p.top_speed_mps for p in placed)
    limit = max(max(file_limits) if file_limits else _MIN_SPEED_LIMIT_MPS, math.ceil(top_mps))
    tr = cr.trajectories
    length_s = duration_s if duration_s is not None else float(tr.t_s[-1] - tr.t_s[0])
    intents = {ActorKind.CAR: Intent.KEEP_LANE, ActorKind.TRUCK: Intent.KEEP_LANE, ActorKind.CYCLIST: Intent.RIDE,
               ActorKind.PEDESTRIAN: Intent.WALK}
    try:
        road = RoadSpec(lanes=frame.lanes, lane_width_m=round(frame.lane_width_m, 2),
                        length_m=round(frame.length_m + limit * length_s + 50.0), speed_limit_mps=float(limit))
        actors = [Actor(name=f"obstacle_{p.obstacle_id}", kind=p.kind, lane=p.lane, s_m=round(p.s_m, 3),
                        speed_mps=round(p.speed_mps, 3), intent=Intent.PARKED if p.parked else intents[p.kind],
                        d_m=round(p.d_m, 3), desired_speed_mps=None if p.parked else round(p.top_speed_mps, 3))
                  for p in placed if p is not ego]
        ego_spec = EgoSpec(lane=ego.lane, s_m=round(ego.s_m, 3), speed_mps=round(ego.speed_mps, 3),
                           desired_speed_mps=float(limit))
        spec = ScenarioSpec(name=name or cr.benchmark_id.replace("-", "_") or "commonroad_seed", road=road,
                            ego=ego_spec, actors=tuple(actors), duration_s=round(length_s, 3),
                            variations=_variations(ego_spec, actors, spread),
                            description=f"CommonRoad {cr.benchmark_id}: {len(actors)} recorded road users, ego is "
                                        f"obstacle {ego.obstacle_id}")
    except ValueError as exc:
        raise CommonRoadError(f"{source}: the seed is not a valid scenario spec: {exc}") from exc
    return Seed(spec, frame, ego.obstacle_id, tuple(skipped), (*road_notes, *notes))


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
