"""The closed-loop benchmark's full-step workload, and counters that say what a rollout of it exercised.

Every scenario shares one signalised intersection (4 main lanes, 1000 m, 14 m/s limit, a 2-lane
crossing road at x = 500 m) and holds 100 agents: the ego (IDM ego policy), 70 cruising cars and
trucks (each a truck with probability 0.1; IDM + MOBIL), 7 cruising cars and 1 red-light runner on
the crossing road, a cutter, a lead car and a parked occluder near the ego, 10 pedestrians (2 crossing, 4
walking along a kerb, 2 waiting, a jaywalker and one stepping out from behind the parked car) and
8 cyclists (5 riding in the right lane, 2 crossing, 1 waiting). Five events per scenario, one of
each kind: cut-in ahead of the ego, hard brake of the lead, jaywalk, occluded step-out and the
red-light run. Event times and the signal plan scale with the rollout's duration ``D``: the main
road is green for ``0.4 D`` (the crossing road red), then red, so both phases occur in every
rollout and traffic is held at both stop lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator_harness.assessment import MetricResult
from simulator_harness.closed_loop import EVENT_CODE, KIND_SIZE, SimParams, SimState, headway_ok
from simulator_harness.scenario import RoadSpec
from simulator_harness.scenario.spec import Actor, ActorKind, EgoSpec, Event, EventKind, Intent, RoadType, ScenarioSpec
from simulator_harness.trajectory import Trajectory

AGENTS = 100
_BACKGROUND = 70
_CROSSING_TRAFFIC = 7
_KERB_M = 2.5  # pedestrians and waiting cyclists stand this far right of lane 0's centre (off the road)
_Placed = list[tuple[int, float, float, float]]  # (lane, s, speed, length) of every lane follower


def full_step_road(duration_s: float) -> RoadSpec:
    """The shared intersection; the main road's green lasts ``0.4 · duration_s`` of a 30 s cycle."""
    return RoadSpec(kind=RoadType.INTERSECTION, lanes=4, length_m=1000.0, speed_limit_mps=14.0,
                    cross_lanes=2, signal_cycle_s=30.0, main_green_s=0.4 * duration_s)


def full_step_spec(road: RoadSpec, rng: np.random.Generator, name: str, duration_s: float) -> ScenarioSpec:
    """One scenario of the workload described in the module docstring (``AGENTS`` agents, 5 events)."""
    d = duration_s
    stop_main = road.length_m / 2 - road.cross_lanes * road.lane_width_m / 2 - 2.0
    stop_cross = road.length_m / 4 - road.lanes * road.lane_width_m / 2 - 2.0
    ego_s, ego_v = float(rng.uniform(340.0, 400.0)), float(rng.uniform(10.0, 12.0))
    car = KIND_SIZE[ActorKind.CAR][0]
    main: _Placed = [(1, ego_s, ego_v, car)]
    actors: list[Actor] = []

    def add(actor: Actor, placed: _Placed | None = None) -> None:
        actors.append(actor)
        if placed is not None:
            placed.append((actor.lane, actor.s_m, actor.speed_mps, KIND_SIZE[actor.kind][0]))

    cut_s, lead_s, park_s = ego_s + rng.uniform(18, 25), ego_s + rng.uniform(40, 50), ego_s + rng.uniform(70, 80)
    add(Actor("cutter", ActorKind.CAR, 2, cut_s, ego_v - 2.0, Intent.KEEP_LANE, desired_speed_mps=ego_v - 2.0), main)
    add(Actor("lead", ActorKind.CAR, 1, lead_s, ego_v, Intent.KEEP_LANE, desired_speed_mps=ego_v), main)
    add(Actor("parked", ActorKind.CAR, 0, park_s, 0.0, Intent.PARKED, d_m=-1.0), main)
    add(Actor("occluded", ActorKind.PEDESTRIAN, 0, park_s + 3.5, 0.0, Intent.WAIT, d_m=-_KERB_M))
    add(Actor("jaywalker", ActorKind.PEDESTRIAN, 0, ego_s + rng.uniform(88, 100), 0.0, Intent.WAIT, d_m=-_KERB_M))
    cross: _Placed = []
    add(Actor("runner", ActorKind.CAR, road.lanes, stop_cross - rng.uniform(25, 35), 10.0, Intent.KEEP_LANE), cross)
    for k in range(5):
        lane, s, v = _free_slot(main, rng, range(1), (0.0, 800.0), (4.0, 5.0), KIND_SIZE[ActorKind.CYCLIST][0])
        add(Actor(f"rider_{k}", ActorKind.CYCLIST, lane, s, v, Intent.RIDE), main)
    for k in range(_CROSSING_TRAFFIC):
        lane, s, v = _free_slot(cross, rng, range(road.lanes, road.lanes + road.cross_lanes),
                                (0.0, stop_cross - 10.0), (8.0, 12.0), car)
        add(Actor(f"crosser_{k}", ActorKind.CAR, lane, s, v, Intent.CRUISE), cross)
    for k in range(_BACKGROUND):
        kind = ActorKind.TRUCK if rng.random() < 0.1 else ActorKind.CAR
        lane, s, v = _free_slot(main, rng, range(road.lanes), (0.0, 800.0), (9.0, 13.0), KIND_SIZE[kind][0])
        add(Actor(f"traffic_{k}", kind, lane, s, v, Intent.CRUISE,
                  desired_speed_mps=float(rng.uniform(0.8, 1.1) * road.speed_limit_mps)), main)
    far = (road.lanes - 1, _KERB_M)  # the far kerb: crossing walkers head across the whole road
    near = (0, -_KERB_M)
    walkers = [(f"ped_cross_{k}", ActorKind.PEDESTRIAN, Intent.CROSS, far) for k in range(2)]
    walkers += [(f"ped_walk_{k}", ActorKind.PEDESTRIAN, Intent.WALK, near) for k in range(4)]
    walkers += [(f"ped_wait_{k}", ActorKind.PEDESTRIAN, Intent.WAIT, near) for k in range(2)]
    walkers += [(f"bike_cross_{k}", ActorKind.CYCLIST, Intent.CROSS, near) for k in range(2)]
    walkers += [("bike_wait", ActorKind.CYCLIST, Intent.WAIT, near)]
    # On the kerbs, clear of the intersection, of each other, of the parked car and its two walkers.
    taken = [park_s, actors[3].s_m, actors[4].s_m]
    kerb = _spread(rng, len(walkers), (0.0, 900.0), avoid=(stop_main - 15.0, stop_main + 25.0), taken=taken)
    for (label, kind, intent, (lane, off)), s in zip(walkers, kerb, strict=True):
        add(Actor(label, kind, lane, s, 0.0, intent, d_m=off))
    events = (
        Event(EventKind.CUT_IN, "cutter", float(rng.uniform(0.1, 0.3) * d)),
        Event(EventKind.LEAD_HARD_BRAKE, "lead", float(rng.uniform(0.3, 0.5) * d),
              {"decel_mps2": float(rng.uniform(4.0, 8.0))}),
        Event(EventKind.JAYWALK, "jaywalker", float(rng.uniform(0.1, 0.3) * d)),
        Event(EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT, "occluded", float(rng.uniform(0.4, 0.6) * d)),
        Event(EventKind.RED_LIGHT_RUNNER, "runner", float(rng.uniform(0.05, 0.15) * d), {"speed_mps": 12.0}),
    )
    ego = EgoSpec(lane=1, s_m=ego_s, speed_mps=ego_v, desired_speed_mps=road.speed_limit_mps)
    return ScenarioSpec(name=name, road=road, ego=ego, actors=tuple(actors), events=events, duration_s=d)


def _free_slot(placed: _Placed, rng: np.random.Generator, lanes: range, s_range: tuple[float, float],
               v_range: tuple[float, float], length: float, tries: int = 500) -> tuple[int, float, float]:
    """A lane, position and speed at least 1 s + 2 m of headway from every vehicle in ``placed``."""
    for _ in range(tries):
        lane, s, v = int(rng.choice(lanes)), float(rng.uniform(*s_range)), float(rng.uniform(*v_range))
        if all(headway_ok(lane, s, v, length, other, 1.0) for other in placed):
            return lane, s, v
    raise RuntimeError(f"no free slot on lanes {list(lanes)} over {s_range} m after {tries} tries")


def _spread(rng: np.random.Generator, n: int, s_range: tuple[float, float], avoid: tuple[float, float],
            taken: list[float], spacing_m: float = 8.0) -> list[float]:
    """``n`` kerb positions outside ``avoid`` and ``spacing_m`` from each other and from ``taken``."""
    out: list[float] = []
    while len(out) < n:
        s = float(rng.uniform(*s_range))
        if not avoid[0] <= s <= avoid[1] and all(abs(s - o) >= spacing_m for o in out + taken):
            out.append(s)
    return out


@dataclass(frozen=True)
class Workload:
    """What one rollout exercised; counts are over the whole batch (``S`` scenarios).

    ``held_at_red``: lane followers that stood (< 0.5 m/s) with their front within 5 m before a
    red stop line at some step; ``ran_red``: event-driven runners whose front crossed a red stop
    line; ``mobil_lane_changes``: lane changes by agents MOBIL drives, ``cut_in_lane_changes`` by
    cut-in actors; ``vru_crossing``: pedestrians and cyclists off the lanes (walkers, crossers)
    that stood on the carriageway at some step; ``metrics_valid``: per outcome metric, scenarios with a valid value."""

    scenarios: int
    steps: int
    agents_by_kind: dict[str, int]
    events_scheduled: dict[str, int]
    events_fired: dict[str, int]
    signalised_lanes: int
    red_steps_main: int
    held_at_red: int
    ran_red: int
    mobil_lane_changes: int
    cut_in_lane_changes: int
    vru_crossing: int
    metrics_valid: dict[str, int]


def describe(first: SimState, last: SimState, params: SimParams, traj: Trajectory,
             metrics: dict[str, MetricResult]) -> Workload:
    """Counters of a rollout from its first and last state, its trajectory and its outcome metrics."""
    road, ev = params.road, params.events
    lane, s_m, kind = _need(traj.lane), _need(traj.s_m), _need(traj.kind)
    valid = traj.valid
    names = {code: k.value for k, code in EVENT_CODE.items()}
    scheduled = _by_name(ev.kind[ev.kind >= 0], names)
    fired = _by_name(ev.kind[last.event_fired & (ev.kind >= 0)], names)
    actor_of = _event_actors(ev.kind, ev.actor, first.shape)
    changed = (lane[..., 1:] != lane[..., :-1]) & (lane[..., 1:] >= 0) & (lane[..., :-1] >= 0)
    changed &= valid[..., 1:] & valid[..., :-1]
    li = np.maximum(lane, 0)
    green = road.green(traj.t_s)  # (T, L)
    red = ~green[np.arange(traj.t_s.shape[0]), li] & (lane >= 0) & np.isfinite(road.stop_line_s_m[li])
    to_line = road.stop_line_s_m[li] - (s_m + 0.5 * _need(traj.length_m)[..., None])
    held = (red & valid & (to_line >= 0.0) & (to_line <= 5.0) & (traj.speed_mps < 0.5)).any(axis=-1)
    crossed = red[..., 1:] & (to_line[..., :-1] > 0.0) & (to_line[..., 1:] <= 0.0) & (lane[..., 1:] == lane[..., :-1])
    runner = actor_of(EventKind.RED_LIGHT_RUNNER)
    vru = np.isin(kind, [ActorKind.PEDESTRIAN.value, ActorKind.CYCLIST.value])
    crossing = (road.on_road(traj.x_m, traj.y_m) & valid & (lane < 0)).any(axis=-1) & vru
    present = valid[..., 0]
    return Workload(
        scenarios=first.shape[0], steps=traj.t_s.shape[0] - 1,
        agents_by_kind={k.value: int((present & (kind == k.value)).sum()) for k in ActorKind},
        events_scheduled=scheduled, events_fired=fired, signalised_lanes=int(np.isfinite(road.stop_line_s_m).sum()),
        red_steps_main=int((~green[:, : road.n_main]).any(axis=1).sum()), held_at_red=int(held.sum()),
        ran_red=int((crossed.any(axis=-1) & runner).sum()),
        mobil_lane_changes=int(changed[first.mobil].sum()),
        cut_in_lane_changes=int(changed[actor_of(EventKind.CUT_IN)].sum()), vru_crossing=int(crossing.sum()),
        metrics_valid={n: int(r.valid.sum()) for n, r in metrics.items()},
    )


def _need(a: np.ndarray | None) -> np.ndarray:
    if a is None:
        raise ValueError("the closed-loop trajectory lacks the lane frame or agent sizes")
    return a


def _by_name(codes: np.ndarray, names: dict[int, str]) -> dict[str, int]:
    return {names[int(c)]: int(n) for c, n in zip(*np.unique(codes, return_counts=True), strict=True)}


def _event_actors(kinds: np.ndarray, actors: np.ndarray, shape: tuple[int, int]) -> Callable[[EventKind], np.ndarray]:
    """``(S, A)`` mask of the agents an event of a given kind acts on."""
    def mask(kind: EventKind) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        sc, k = np.nonzero(kinds == EVENT_CODE[kind])
        out[sc, actors[sc, k]] = True
        return out
    return mask


__all__ = ["AGENTS", "Workload", "describe", "full_step_road", "full_step_spec"]
