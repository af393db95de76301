"""Closed-loop throughput: scenario-steps/s and agent-steps/s on one core, 100 agents per scenario.

The baseline, measured in the same run, is the same IDM car-following step written the way
highway-env steps its vehicles: a Python loop over vehicles, each finding its leader in its lane
and integrating itself. Our figure is the full step (events, lane index, IDM, MOBIL every 1 s,
lateral model, world pose) plus trajectory recording, for a batch of scenarios.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before NumPy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import math
import time

import numpy as np

from bench.common import Figure, main_for
from simulator_harness.closed_loop import (
    IDMEgo,
    IDMParams,
    SimParams,
    SimState,
    TrajectoryRecorder,
    build_batch,
    free_flow_spec,
    step,
)
from simulator_harness.scenario import RoadSpec

AGENTS = 100


def _batch(n_scenarios: int) -> tuple[SimState, SimParams]:
    rng = np.random.default_rng(0)
    road = RoadSpec(lanes=4, length_m=3000.0)
    specs = [free_flow_spec(road, AGENTS - 1, rng, name=f"b{i}", duration_s=60.0) for i in range(n_scenarios)]
    return build_batch(specs)


def _ours(n_scenarios: int, steps: int) -> float:
    state, params = _batch(n_scenarios)
    policy = IDMEgo()
    recorder = TrajectoryRecorder(state, steps)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = step(state, policy.act(state, params), params)
        recorder.record(state)
    return time.perf_counter() - t0


def _python_loop(n_agents: int, steps: int) -> float:
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


def run(quick: bool = False) -> list[Figure]:
    """Scenario-steps/s and agent-steps/s of the batched step vs the per-agent Python loop."""
    n_scenarios, steps = (100, 20) if quick else (1000, 100)
    ours = _ours(n_scenarios, steps)
    base_steps = 3 if quick else 10
    base = _python_loop(AGENTS, base_steps)
    ours_scen = n_scenarios * steps / ours
    base_scen = base_steps / base
    note = f"{n_scenarios} scenarios x {AGENTS} agents x {steps} steps, one core, trajectories recorded"
    return [
        Figure("closed_loop_scenario_steps_per_s", ours_scen, "steps/s", base_scen,
               "per-agent Python IDM loop (highway-env style)", note=note + "; goal >= 29000"),
        Figure("closed_loop_agent_steps_per_s", ours_scen * AGENTS, "steps/s", base_scen * AGENTS,
               "per-agent Python IDM loop (highway-env style)", note=note),
    ]


if __name__ == "__main__":
    main_for(run)
