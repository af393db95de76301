"""The scenario spec: frozen dataclasses for road, environment, actors, scheduled events, variations.

A spec is pure data. :mod:`simulator_harness.scenario.io` reads and writes it as TOML or JSON,
:mod:`simulator_harness.closed_loop.build` turns a batch of specs into simulator arrays. Every
cross-field check lives in ``__post_init__`` and names the offending key, e.g.
``events[1].actor: 'agent_9' is not an actor (known: agent_1, agent_2)``.

Lanes are numbered on the road built from :class:`RoadSpec`: on a straight road lanes
``0..lanes-1`` run along +x, lane 0 rightmost; at an intersection the main road keeps those
numbers and the crossing road's lanes (running along +y) follow as ``lanes..lanes+cross_lanes-1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class RoadType(StrEnum):
    """Road geometry of a scenario."""

    STRAIGHT = "straight"
    INTERSECTION = "intersection"


class Weather(StrEnum):
    """Weather, an ODD environment axis (no effect on dynamics)."""

    CLEAR = "clear"
    RAIN = "rain"
    FOG = "fog"
    SNOW = "snow"


class TimeOfDay(StrEnum):
    """Time of day, an ODD environment axis (no effect on dynamics)."""

    DAY = "day"
    DUSK = "dusk"
    NIGHT = "night"


class ActorKind(StrEnum):
    """What an actor is; sets its size and which model moves it."""

    CAR = "car"
    TRUCK = "truck"
    PEDESTRIAN = "pedestrian"
    CYCLIST = "cyclist"


class Intent(StrEnum):
    """What an actor does when no event overrides it."""

    CRUISE = "cruise"  # IDM car following + MOBIL lane changes
    KEEP_LANE = "keep_lane"  # IDM car following only
    PARKED = "parked"  # stands still (an occluder)
    RIDE = "ride"  # cyclist following its lane
    WALK = "walk"  # pedestrian walking along the road
    CROSS = "cross"  # pedestrian or cyclist crossing the road from the start
    WAIT = "wait"  # pedestrian or cyclist standing at the kerb until an event


class EventKind(StrEnum):
    """Scheduled events that make a scenario interesting."""

    CUT_IN = "cut_in"
    LEAD_HARD_BRAKE = "lead_hard_brake"
    JAYWALK = "jaywalk"
    OCCLUDED_PEDESTRIAN_STEP_OUT = "occluded_pedestrian_step_out"
    RED_LIGHT_RUNNER = "red_light_runner"


class Dist(StrEnum):
    """Nominal distribution of a varied parameter over its range."""

    UNIFORM = "uniform"
    NORMAL = "normal"  # mean at the centre, std = range / 4, truncated to the range


_VEHICLES = frozenset({ActorKind.CAR, ActorKind.TRUCK})
_INTENTS: dict[ActorKind, frozenset[Intent]] = {
    ActorKind.CAR: frozenset({Intent.CRUISE, Intent.KEEP_LANE, Intent.PARKED}),
    ActorKind.TRUCK: frozenset({Intent.CRUISE, Intent.KEEP_LANE, Intent.PARKED}),
    ActorKind.PEDESTRIAN: frozenset({Intent.WALK, Intent.CROSS, Intent.WAIT}),
    ActorKind.CYCLIST: frozenset({Intent.RIDE, Intent.CROSS, Intent.WAIT}),
}

#: Parameters each event kind accepts, with their defaults (units in the names).
EVENT_PARAMS: dict[EventKind, dict[str, float]] = {
    EventKind.CUT_IN: {"lateral_omega_radps": 1.5, "lateral_accel_mps2": 3.0},
    EventKind.LEAD_HARD_BRAKE: {"decel_mps2": 6.0, "duration_s": 0.0, "jerk_mps3": 15.0},
    EventKind.JAYWALK: {"speed_mps": 1.4},
    EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT: {"speed_mps": 2.5},
    EventKind.RED_LIGHT_RUNNER: {"speed_mps": 0.0},
}
_EVENT_ACTORS: dict[EventKind, frozenset[ActorKind]] = {
    EventKind.CUT_IN: _VEHICLES,
    EventKind.LEAD_HARD_BRAKE: _VEHICLES | {ActorKind.CYCLIST},
    EventKind.JAYWALK: frozenset({ActorKind.PEDESTRIAN}),
    EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT: frozenset({ActorKind.PEDESTRIAN}),
    EventKind.RED_LIGHT_RUNNER: _VEHICLES,
}


@dataclass(frozen=True)
class RoadSpec:
    """Road geometry, lane layout, speed limit and (at an intersection) the signal plan."""

    kind: RoadType = RoadType.STRAIGHT
    lanes: int = 3
    lane_width_m: float = 3.5
    length_m: float = 500.0
    speed_limit_mps: float = 25.0
    cross_lanes: int = 2
    signal_cycle_s: float = 30.0
    main_green_s: float = 15.0  # the main road is green for [0, main_green_s) of each cycle

    def __post_init__(self) -> None:
        if not 1 <= self.lanes <= 8:
            raise ValueError(f"road.lanes: must be 1..8, got {self.lanes}")
        if not 2.5 <= self.lane_width_m <= 5.0:
            raise ValueError(f"road.lane_width_m: must be 2.5..5.0 m, got {self.lane_width_m}")
        if not 50.0 <= self.length_m <= 20_000.0:
            raise ValueError(f"road.length_m: must be 50..20000 m, got {self.length_m}")
        if not 1.0 <= self.speed_limit_mps <= 50.0:
            raise ValueError(f"road.speed_limit_mps: must be 1..50 m/s, got {self.speed_limit_mps}")
        if not 1 <= self.cross_lanes <= 4:
            raise ValueError(f"road.cross_lanes: must be 1..4, got {self.cross_lanes}")
        if not 0.0 < self.main_green_s < self.signal_cycle_s:
            raise ValueError(f"road.main_green_s: must lie in (0, signal_cycle_s={self.signal_cycle_s}), "
                             f"got {self.main_green_s}")

    @property
    def total_lanes(self) -> int:
        """Lanes on the built road: main lanes plus, at an intersection, the crossing lanes."""
        return self.lanes + (self.cross_lanes if self.kind is RoadType.INTERSECTION else 0)


@dataclass(frozen=True)
class EgoSpec:
    """The vehicle under test: its start on a main-road lane and the speed it wants."""

    lane: int = 0
    s_m: float = 50.0
    speed_mps: float = 20.0
    desired_speed_mps: float = 25.0

    def __post_init__(self) -> None:
        if self.speed_mps < 0 or self.desired_speed_mps <= 0:
            raise ValueError("ego.speed_mps must be >= 0 and ego.desired_speed_mps > 0")


@dataclass(frozen=True)
class Actor:
    """One other road user: where it starts (lane frame ``s``/``d``), how fast, and its intent."""

    name: str
    kind: ActorKind = ActorKind.CAR
    lane: int = 0
    s_m: float = 0.0
    speed_mps: float = 0.0
    intent: Intent = Intent.CRUISE
    d_m: float = 0.0  # lateral offset from the lane centre, + to the left
    desired_speed_mps: float | None = None  # None: the road's speed limit (cars), walking pace (VRUs)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"actor name {self.name!r}: use letters, digits and '_'")
        if self.intent not in _INTENTS[self.kind]:
            allowed = ", ".join(sorted(_INTENTS[self.kind]))
            raise ValueError(f"{self.name}.intent: {self.intent!r} is not for a {self.kind} (use {allowed})")
        if self.speed_mps < 0 or (self.desired_speed_mps is not None and self.desired_speed_mps < 0):
            raise ValueError(f"{self.name}.speed_mps: speeds must be >= 0")


@dataclass(frozen=True)
class Event:
    """A scheduled event: ``actor`` does ``kind`` at ``t_s``, shaped by ``params`` (see EVENT_PARAMS)."""

    kind: EventKind
    actor: str
    t_s: float
    params: dict[str, float] = field(default_factory=dict)

    def param(self, name: str) -> float:
        """The value of ``name``: the spec's own or the kind's default."""
        return float(self.params.get(name, EVENT_PARAMS[self.kind][name]))


@dataclass(frozen=True)
class Variation:
    """A parameter range to explore, e.g. ``key="events[0].t_s", low=1.0, high=3.0``.

    Keys: ``ego.<field>``, ``actors.<name>.<field>``, ``events[<i>].t_s``,
    ``events[<i>].params.<name>``; see :mod:`simulator_harness.scenario.variation`.
    """

    key: str
    low: float
    high: float
    dist: Dist = Dist.UNIFORM

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"variation {self.key!r}: need finite low < high, got {self.low}, {self.high}")


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario: road, environment, ego, actors, scheduled events, duration and variations."""

    name: str
    road: RoadSpec = field(default_factory=RoadSpec)
    weather: Weather = Weather.CLEAR
    time_of_day: TimeOfDay = TimeOfDay.DAY
    ego: EgoSpec = field(default_factory=EgoSpec)
    actors: tuple[Actor, ...] = ()
    events: tuple[Event, ...] = ()
    duration_s: float = 10.0
    variations: tuple[Variation, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not 0.1 <= self.duration_s <= 600.0:
            raise ValueError(f"duration_s: must be 0.1..600 s, got {self.duration_s}")
        if not 0 <= self.ego.lane < self.road.lanes:
            raise ValueError(f"ego.lane: {self.ego.lane} is not a main-road lane (0..{self.road.lanes - 1})")
        first: dict[str, int] = {}
        for i, actor in enumerate(self.actors):
            if first.setdefault(actor.name, i) != i:
                raise ValueError(f"actors[{i}].name: {actor.name!r} is used twice")
            if not 0 <= actor.lane < self.road.total_lanes:
                raise ValueError(f"actors[{i}].lane: {actor.lane} is not a lane (0..{self.road.total_lanes - 1})")
        by_name = {a.name: a for a in self.actors}
        for i, event in enumerate(self.events):
            self._check_event(i, event, by_name)
        from simulator_harness.scenario.variation import resolve  # cycle: variation reads specs

        for i, var in enumerate(self.variations):
            try:
                resolve(self, var.key)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"variations[{i}].key: {exc}") from None

    def _check_event(self, i: int, event: Event, by_name: dict[str, Actor]) -> None:
        if event.actor not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ValueError(f"events[{i}].actor: {event.actor!r} is not an actor (known: {known})")
        if not 0.0 <= event.t_s < self.duration_s:
            raise ValueError(f"events[{i}].t_s: {event.t_s} is outside the scenario [0, {self.duration_s})")
        unknown = sorted(set(event.params) - set(EVENT_PARAMS[event.kind]))
        if unknown:
            raise ValueError(f"events[{i}].params.{unknown[0]}: not a parameter of {event.kind} "
                             f"(known: {', '.join(EVENT_PARAMS[event.kind])})")
        kind = by_name[event.actor].kind
        if kind not in _EVENT_ACTORS[event.kind]:
            raise ValueError(f"events[{i}].actor: {event.kind} needs a "
                             f"{'/'.join(sorted(_EVENT_ACTORS[event.kind]))}, {event.actor!r} is a {kind}")
        if event.kind is EventKind.RED_LIGHT_RUNNER and (
                self.road.kind is not RoadType.INTERSECTION or by_name[event.actor].lane < self.road.lanes):
            raise ValueError(f"events[{i}].kind: red_light_runner needs an intersection and an actor on a "
                             f"crossing lane (>= {self.road.lanes})")

    def actor_index(self, name: str) -> int:
        """Index of actor ``name`` in the simulator's agent axis (the ego is 0, actors follow)."""
        return 1 + [a.name for a in self.actors].index(name)
