"""Specs to simulator arrays, and a traffic generator that never places bodies on top of each other.

:func:`build_batch` turns scenarios sharing one road into an initial :class:`SimState` and
:class:`SimParams`, rejecting a spec whose bodies overlap at t = 0. :func:`free_flow_spec` samples
background traffic, resampling any vehicle that would start closer than a safe headway.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator_harness.closed_loop.errors import SimulationError
from simulator_harness.closed_loop.events import EVENT_CODE, EventTable
from simulator_harness.closed_loop.geometry import Box, boxes_overlap
from simulator_harness.closed_loop.road import Road, build_road
from simulator_harness.closed_loop.state import KIND_CODE, KIND_SIZE, SimState
from simulator_harness.closed_loop.step import SimParams
from simulator_harness.scenario.spec import Actor, ActorKind, EgoSpec, EventKind, Intent, RoadSpec, ScenarioSpec
from simulator_harness.trajectory import EGO

_PARAM_NAMES: dict[EventKind, tuple[str, ...]] = {
    EventKind.CUT_IN: ("lateral_omega_radps", "lateral_accel_mps2"),
    EventKind.LEAD_HARD_BRAKE: ("decel_mps2", "duration_s", "jerk_mps3"),
    EventKind.JAYWALK: ("speed_mps",),
    EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT: ("speed_mps",),
    EventKind.RED_LIGHT_RUNNER: ("speed_mps",),
}
_VEHICLE_JERK_MPS3 = 15.0
_WALKER_JERK_MPS3 = 10.0  # walkers reach their pace within a few tenths of a second
_LAT_OMEGA_RADPS = 1.2
_LAT_ACCEL_MPS2 = 2.0
_WALK_MPS = {ActorKind.PEDESTRIAN: 1.4, ActorKind.CYCLIST: 4.0}
_RIDE_MPS = 5.0


def build_batch(specs: Sequence[ScenarioSpec], n_agents: int | None = None) -> tuple[SimState, SimParams]:
    """Initial state (``S = len(specs)``, ``A = n_agents`` or the largest scenario) and params."""
    if not specs:
        raise SimulationError("build_batch needs at least one scenario")
    road_spec = specs[0].road
    for spec in specs:
        if spec.road != road_spec:
            raise SimulationError(f"{spec.name}: every scenario of a batch must share one road "
                                  f"({spec.road} != {road_spec}); batch them by road")
    road = build_road(road_spec)
    n_s = len(specs)
    n_a = max(1 + len(s.actors) for s in specs)
    if n_agents is not None:
        if n_agents < n_a:
            raise SimulationError(f"n_agents={n_agents} is less than the largest scenario ({n_a})")
        n_a = n_agents
    cols = _empty_columns(n_s, n_a)
    for i, spec in enumerate(specs):
        _place(cols, i, EGO, road, _ego_actor(spec), mobil=False, v0=spec.ego.desired_speed_mps)
        for j, actor in enumerate(spec.actors, start=1):
            _place(cols, i, j, road, actor, mobil=actor.intent is Intent.CRUISE, v0=None)
    n_e = max(len(s.events) for s in specs)
    ev = {name: np.zeros((n_s, n_e)) for name in ("t_s", "p1", "p2", "p3")}
    ev_kind = np.full((n_s, n_e), -1, dtype=np.int64)
    ev_actor = np.zeros((n_s, n_e), dtype=np.int64)
    for i, spec in enumerate(specs):
        for k, event in enumerate(spec.events):
            ev["t_s"][i, k] = event.t_s
            ev_kind[i, k] = EVENT_CODE[event.kind]
            ev_actor[i, k] = spec.actor_index(event.actor)
            for slot, name in zip(("p1", "p2", "p3"), _PARAM_NAMES[event.kind], strict=False):
                ev[slot][i, k] = event.param(name)
    state = SimState(t_s=0.0, step_index=0, event_fired=np.zeros((n_s, n_e), dtype=bool),
                     **cols)
    _reject_overlaps(state, specs)
    events = EventTable(t_s=ev["t_s"], kind=ev_kind, actor=ev_actor, p1=ev["p1"], p2=ev["p2"], p3=ev["p3"])
    return state, SimParams(road=road, events=events)


def free_flow_spec(road: RoadSpec, n_actors: int, rng: np.random.Generator, name: str = "free_flow",
                   duration_s: float = 10.0, truck_share: float = 0.1, min_headway_s: float = 1.0,
                   max_tries: int = 200) -> ScenarioSpec:
    """Ego plus ``n_actors`` cruising cars/trucks on the main lanes, without events.

    Each vehicle is drawn uniformly over the first 60 % of the road; a draw closer than
    ``2 m + min_headway_s · v`` (bumper to bumper) to a vehicle in its lane is resampled, up to
    ``max_tries`` times, after which :class:`SimulationError` says the road is too full.
    """
    limit = road.speed_limit_mps
    ego_lane = int(rng.integers(road.lanes))
    ego_v = float(rng.uniform(0.7, 0.9) * limit)
    car_length = KIND_SIZE[ActorKind.CAR][0]
    placed: list[tuple[int, float, float, float]] = [(ego_lane, 0.1 * road.length_m, ego_v, car_length)]
    actors: list[Actor] = []
    for k in range(n_actors):
        kind = ActorKind.TRUCK if rng.random() < truck_share else ActorKind.CAR
        length = KIND_SIZE[kind][0]
        for _ in range(max_tries):
            lane = int(rng.integers(road.lanes))
            s = float(rng.uniform(0.0, 0.6 * road.length_m))
            v = float(rng.uniform(0.7, 0.9) * limit)
            if all(headway_ok(lane, s, v, length, other, min_headway_s) for other in placed):
                break
        else:
            raise SimulationError(f"{name}: cannot place {n_actors} vehicles on a {road.length_m} m road "
                                  f"with {road.lanes} lanes at {min_headway_s} s headway")
        placed.append((lane, s, v, length))
        actors.append(Actor(name=f"agent_{k + 1}", kind=kind, lane=lane, s_m=s, speed_mps=v,
                            desired_speed_mps=float(rng.uniform(0.8, 1.1) * limit)))
    ego = EgoSpec(lane=ego_lane, s_m=0.1 * road.length_m, speed_mps=ego_v, desired_speed_mps=limit)
    return ScenarioSpec(name=name, road=road, ego=ego, actors=tuple(actors), duration_s=duration_s)


def headway_ok(lane: int, s: float, v: float, length: float, other: tuple[int, float, float, float],
               headway_s: float) -> bool:
    """Whether a vehicle ``(lane, s, v, length)`` keeps ``2 m + headway_s · v`` (the follower's speed)
    bumper to bumper from ``other = (lane, s, v, length)``."""
    o_lane, o_s, o_v, o_len = other
    if o_lane != lane:
        return True
    gap = abs(s - o_s) - 0.5 * (length + o_len)
    follower_v = v if s < o_s else o_v
    return gap >= 2.0 + headway_s * follower_v


def _ego_actor(spec: ScenarioSpec) -> Actor:
    return Actor(name="ego", kind=ActorKind.CAR, lane=spec.ego.lane, s_m=spec.ego.s_m,
                 speed_mps=spec.ego.speed_mps, intent=Intent.KEEP_LANE)


def _empty_columns(n_s: int, n_a: int) -> dict[str, np.ndarray]:
    z = np.zeros((n_s, n_a))
    return {
        "x_m": z.copy(), "y_m": z.copy(), "yaw_rad": z.copy(), "speed_mps": z.copy(), "accel_mps2": z.copy(),
        "s_m": z.copy(), "d_m": z.copy(), "vd_mps": z.copy(), "lane": np.full((n_s, n_a), -1, dtype=np.int64),
        "kind_code": np.zeros((n_s, n_a), dtype=np.int8), "length_m": np.ones((n_s, n_a)),
        "width_m": np.ones((n_s, n_a)), "valid": np.zeros((n_s, n_a), dtype=bool), "v0_mps": z.copy(),
        "mobil": np.zeros((n_s, n_a), dtype=bool), "ignore_signal": np.zeros((n_s, n_a), dtype=bool),
        "brake_mps2": z.copy(), "brake_until_s": z.copy(), "jerk_max_mps3": np.full((n_s, n_a), 15.0),
        "lat_omega_radps": np.full((n_s, n_a), _LAT_OMEGA_RADPS),
        "lat_accel_max_mps2": np.full((n_s, n_a), _LAT_ACCEL_MPS2),
    }


def _place(cols: dict[str, np.ndarray], i: int, j: int, road: Road, actor: Actor, mobil: bool,
           v0: float | None) -> None:
    """Write one actor into slot ``(i, j)``: lane followers keep their lane, walkers go free."""
    length, width, _ = KIND_SIZE[actor.kind]
    h = float(road.heading_rad[actor.lane])
    ox, oy = road.origin_xy_m[actor.lane]
    x = ox + actor.s_m * np.cos(h) - actor.d_m * np.sin(h)
    y = oy + actor.s_m * np.sin(h) + actor.d_m * np.cos(h)
    vru = actor.kind in (ActorKind.PEDESTRIAN, ActorKind.CYCLIST)
    free = vru and actor.intent is not Intent.RIDE
    if v0 is None:
        if actor.intent in (Intent.PARKED, Intent.WAIT):
            v0 = 0.0
        elif actor.desired_speed_mps is not None:
            v0 = actor.desired_speed_mps
        elif actor.intent is Intent.RIDE:
            v0 = _RIDE_MPS
        elif vru:
            v0 = _WALK_MPS[actor.kind]
        else:
            v0 = float(road.speed_limit_mps[actor.lane])
    yaw = h
    if free and actor.intent is Intent.CROSS:
        centre_y = (road.n_main - 1) * road.width_m * 0.5
        yaw = np.pi / 2 if y < centre_y else -np.pi / 2
    speed = 0.0 if actor.intent in (Intent.PARKED, Intent.WAIT) else actor.speed_mps
    values = {
        "x_m": x, "y_m": y, "yaw_rad": yaw, "speed_mps": speed, "s_m": actor.s_m if not free else 0.0,
        "d_m": actor.d_m if not free else 0.0, "lane": -1 if free else actor.lane,
        "kind_code": KIND_CODE[actor.kind], "length_m": length, "width_m": width, "valid": True, "v0_mps": v0,
        "mobil": mobil and actor.kind in (ActorKind.CAR, ActorKind.TRUCK),
        "jerk_max_mps3": _WALKER_JERK_MPS3 if free else _VEHICLE_JERK_MPS3,
    }
    for name, value in values.items():
        cols[name][i, j] = value


def _reject_overlaps(state: SimState, specs: Sequence[ScenarioSpec]) -> None:
    n_a = state.shape[1]
    a, b = np.triu_indices(n_a, k=1)

    def box(idx: np.ndarray) -> Box:
        return (state.x_m[:, idx], state.y_m[:, idx], state.yaw_rad[:, idx], state.length_m[:, idx],
                state.width_m[:, idx])

    hit = boxes_overlap(box(a), box(b)) & state.valid[:, a] & state.valid[:, b]
    if hit.any():
        i, k = (int(v) for v in np.argwhere(hit)[0])
        spec = specs[i]
        names = ["ego", *(x.name for x in spec.actors)]
        raise SimulationError(f"{spec.name}: {names[a[k]]!r} and {names[b[k]]!r} overlap at t = 0; "
                              f"move one of them")
