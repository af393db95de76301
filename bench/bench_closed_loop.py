"""Closed-loop throughput on one core: the full step, free flow, and the floor both are held to.

``closed_loop_full_step_*``: rollouts of the workload of :mod:`bench.closed_loop_workload` (S
scenarios of 100 agents each on one signalised intersection: the ego, 77 cars and trucks that
cruise with IDM + MOBIL, a red-light runner, a cutter, a lead car and a parked car, 10 pedestrians
and 8 cyclists; 5 events per scenario, one of each kind; both signal phases in every rollout). The timed region is
one whole rollout: per step the ego policy (``IDMEgo``) and ``step`` (due events, the lane index
with walkers and crossing traffic projected onto the lanes, IDM with red lights, MOBIL every 1 s,
the lateral model, the world pose) and the trajectory recording, then every registered outcome
metric of every rollout (``compute_all``). What it exercised is counted afterwards, outside the
timed region (:func:`bench.closed_loop_workload.describe`).

``closed_loop_free_flow_*``: ego + 99 cruising cars and trucks on a 4-lane 3000 m straight road
(``free_flow_spec``): no events, no walkers, no signals, no metrics; steps and recording only.

The limit of both, measured in the same run over the same ``(S, A)`` arrays, is the bare
vectorised IDM update: ``idm_accel`` for every agent slot plus the speed/position integration,
with each agent's leader fixed at the start (no neighbour search), nothing recorded; the best of
three runs. It is the memory-bound floor of a vectorised car-following step, so ratios are below 1.

``closed_loop_full_step_scenario_steps_per_s_vs_python_loop`` is a second reference, not a limit:
the full-step figure beside a per-agent Python IDM loop written the way highway-env steps its
vehicles (100 vehicles in free flow, each scanning all others for its leader; IDM only).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before NumPy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.closed_loop_workload import AGENTS, Workload, describe, full_step_road, full_step_spec
from bench.common import Figure, main_for
from simulator_harness.assessment import compute_all
from simulator_harness.closed_loop import (
    DT_S,
    IDMEgo,
    IDMParams,
    SimParams,
    SimState,
    TrajectoryRecorder,
    build_batch,
    free_flow_spec,
    idm_accel,
    step,
)
from simulator_harness.scenario import RoadSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FLOOR = "bare vectorised IDM update (idm_accel + integration, fixed leaders), same (S, A) arrays"
PYTHON_LOOP = "per-agent Python IDM loop, 100 vehicles in free flow (highway-env style)"


def full_step_batch(n_scenarios: int, steps: int) -> tuple[SimState, SimParams]:
    """The full-step workload for rollouts of ``steps`` steps (event times and signals scale with it)."""
    rng = np.random.default_rng(0)
    duration_s = steps * DT_S
    road = full_step_road(duration_s)
    specs = [full_step_spec(road, rng, f"f{i}", duration_s) for i in range(n_scenarios)]
    return build_batch(specs, AGENTS)


def free_flow_batch(n_scenarios: int) -> tuple[SimState, SimParams]:
    """The free-flow workload: ego + 99 cruising cars/trucks, no events, walkers or signals."""
    rng = np.random.default_rng(0)
    road = RoadSpec(lanes=4, length_m=3000.0)
    specs = [free_flow_spec(road, AGENTS - 1, rng, name=f"b{i}", duration_s=60.0) for i in range(n_scenarios)]
    return build_batch(specs)


@dataclass(frozen=True)
class FullStepRun:
    """One timed full-step rollout: ``elapsed_s`` the whole timed region, ``metrics_s`` the part of it
    spent on outcome metrics, ``workload`` what it exercised (counted outside the timed region)."""

    elapsed_s: float
    metrics_s: float
    workload: Workload


def full_step(state: SimState, params: SimParams, steps: int) -> FullStepRun:
    """One rollout of ``steps`` steps plus its outcome metrics, timed (see the module docstring)."""
    policy = IDMEgo()
    first = state
    t0 = time.perf_counter()
    recorder = TrajectoryRecorder(state, steps + 1)
    recorder.record(state)
    for _ in range(steps):
        state = step(state, policy.act(state, params), params)
        recorder.record(state)
    traj = recorder.result()
    t1 = time.perf_counter()
    metrics = compute_all(traj, params.road)
    t2 = time.perf_counter()
    return FullStepRun(t2 - t0, t2 - t1, describe(first, state, params, traj, metrics))


def free_flow(state: SimState, params: SimParams, steps: int) -> float:
    """Seconds for ``steps`` steps with recording, no metrics."""
    policy = IDMEgo()
    recorder = TrajectoryRecorder(state, steps)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = step(state, policy.act(state, params), params)
        recorder.record(state)
    return time.perf_counter() - t0


def fixed_leaders(state: SimState) -> tuple[I64, F64]:
    """Flat index of each agent's leader in its lane at the start (itself where none) and an offset
    that is ``inf`` where there is none (so its gap is infinite), both ``(S·A,)``."""
    n_s, n_a = state.shape
    lane = np.where(state.valid & (state.lane >= 0), state.lane, -1).ravel()
    scen = np.repeat(np.arange(n_s), n_a)
    order = np.lexsort((state.s_m.ravel(), lane, scen))
    same = (scen[order[1:]] == scen[order[:-1]]) & (lane[order[1:]] == lane[order[:-1]]) & (lane[order[:-1]] >= 0)
    leader = np.arange(n_s * n_a)
    leader[order[:-1][same]] = order[1:][same]
    far = np.where(leader == np.arange(n_s * n_a), np.inf, 0.0)
    return leader, far


def idm_floor(state: SimState, steps: int, idm: IDMParams) -> tuple[float, F64]:
    """Seconds for ``steps`` bare IDM updates of every slot of ``state`` (see the module docstring),
    and the speeds they end with, ``(S·A,)``."""
    leader, far = fixed_leaders(state)
    half = 0.5 * state.length_m.ravel()
    sep = half + half[leader] - far  # gap = s_leader - s - sep: inf where there is no leader
    s = state.s_m.ravel().copy()
    v = state.speed_mps.ravel().copy()
    v0 = state.v0_mps.ravel()
    t0 = time.perf_counter()
    for _ in range(steps):
        gap = s[leader] - s - sep
        a = idm_accel(v, v0, gap, v - v[leader], idm)
        v_new = np.maximum(v + a * DT_S, 0.0)
        s += 0.5 * DT_S * (v + v_new)
        v = v_new
    return time.perf_counter() - t0, v


def python_loop(n_agents: int, steps: int) -> float:
    """One scenario of ``n_agents`` IDM vehicles stepped one by one, highway-env style."""
    p = IDMParams()
    rng = np.random.default_rng(1)
    lanes = [int(v) for v in rng.integers(0, 4, n_agents)]
    s = [float(v) for v in np.sort(rng.uniform(0, 2000, n_agents))]
    v = [float(x) for x in rng.uniform(15, 25, n_agents)]
    v0 = [float(x) for x in rng.uniform(20, 30, n_agents)]
    root = 2.0 * math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2)
    t0 = time.perf_counter()
    for _ in range(steps):
        acc = []
        for i in range(n_agents):
            gap, v_lead = math.inf, 0.0
            for j in range(n_agents):  # highway-env's road.neighbour_vehicles scans every vehicle
                if j != i and lanes[j] == lanes[i] and s[i] < s[j] and s[j] - s[i] - 4.6 < gap:
                    gap, v_lead = s[j] - s[i] - 4.6, v[j]
            free = 1.0 - (v[i] / v0[i]) ** p.delta
            inter = 0.0
            if math.isfinite(gap):
                s_star = p.min_gap_m + max(0.0, v[i] * p.time_headway_s + v[i] * (v[i] - v_lead) / root)
                inter = (s_star / max(gap, 0.05)) ** 2
            acc.append(min(max(p.accel_max_mps2 * (free - inter), -p.decel_max_mps2), p.accel_max_mps2))
        for i in range(n_agents):
            v_new = max(v[i] + acc[i] * 0.1, 0.0)
            s[i] += 0.5 * (v[i] + v_new) * 0.1
            v[i] = v_new
    return time.perf_counter() - t0


def _floor_s(state: SimState, steps: int, idm: IDMParams) -> float:
    return min(idm_floor(state, steps, idm)[0] for _ in range(3))


def run(quick: bool = False) -> list[Figure]:
    """Full-step and free-flow scenario-steps/s and agent-steps/s vs the bare IDM floor, and the
    full step vs the per-agent Python loop."""
    n_full, full_steps = (40, 30) if quick else (500, 100)
    n_free, free_steps = (100, 20) if quick else (1000, 100)
    loop_steps = 3 if quick else 10

    state, params = full_step_batch(n_full, full_steps)
    full = full_step(state, params, full_steps)
    work = full.workload
    full_floor = n_full * full_steps / _floor_s(state, full_steps, params.idm)
    state, params = free_flow_batch(n_free)
    free_rate = n_free * free_steps / free_flow(state, params, free_steps)
    free_floor = n_free * free_steps / _floor_s(state, free_steps, params.idm)
    loop_rate = loop_steps / python_loop(AGENTS, loop_steps)
    full_rate = n_full * full_steps / full.elapsed_s

    kinds = ", ".join(f"{n} {k}" for k, n in work.agents_by_kind.items())
    full_note = (f"{n_full} scenarios x {AGENTS} agents x {full_steps} steps, one core: {kinds}; "
                 f"{sum(work.events_fired.values())} events fired, {work.mobil_lane_changes} MOBIL lane changes, "
                 f"{work.held_at_red} held at red, {len(work.metrics_valid)} outcome metrics "
                 f"({100 * full.metrics_s / full.elapsed_s:.0f} % of the time)")
    free_note = f"{n_free} scenarios x {AGENTS} cars/trucks x {free_steps} steps, one core, no events/walkers/signals"
    return [
        Figure("closed_loop_full_step_scenario_steps_per_s", full_rate, "steps/s", full_floor, FLOOR,
               note=full_note + "; Waymax reports ~29000 on 8 V100s"),
        Figure("closed_loop_full_step_agent_steps_per_s", full_rate * AGENTS, "steps/s", full_floor * AGENTS, FLOOR,
               note=full_note),
        Figure("closed_loop_full_step_scenario_steps_per_s_vs_python_loop", full_rate, "steps/s", loop_rate,
               PYTHON_LOOP, note="a reference, not a limit: the loop does IDM only; highway-env itself: "
               "49 env-steps/s with 50 vehicles"),
        Figure("closed_loop_free_flow_scenario_steps_per_s", free_rate, "steps/s", free_floor, FLOOR, note=free_note),
        Figure("closed_loop_free_flow_agent_steps_per_s", free_rate * AGENTS, "steps/s", free_floor * AGENTS, FLOOR,
               note=free_note),
    ]


if __name__ == "__main__":
    main_for(run)
