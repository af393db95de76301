"""Run a policy in closed loop and record the trajectory (the only loop in the simulator)."""

from __future__ import annotations

from collections.abc import Sequence

from simulator_harness.closed_loop.build import build_batch
from simulator_harness.closed_loop.policy import EgoPolicy
from simulator_harness.closed_loop.state import DT_S, SimState, TrajectoryRecorder
from simulator_harness.closed_loop.step import SimParams, step
from simulator_harness.scenario.spec import ScenarioSpec
from simulator_harness.trajectory import Trajectory


def rollout(state: SimState, params: SimParams, policy: EgoPolicy, steps: int) -> Trajectory:
    """Record the initial state and ``steps`` further steps: a trajectory ``(S, A, T)`` with ``T = steps + 1``."""
    recorder = TrajectoryRecorder(state, steps + 1)
    recorder.record(state)
    for _ in range(steps):
        state = step(state, policy.act(state, params), params)
        recorder.record(state)
    return recorder.result()


def simulate(specs: Sequence[ScenarioSpec], policy: EgoPolicy,
             n_agents: int | None = None) -> tuple[Trajectory, SimParams]:
    """Build ``specs`` into one batch and roll out for the longest duration among them."""
    state, params = build_batch(specs, n_agents)
    steps = round(max(s.duration_s for s in specs) / DT_S)
    return rollout(state, params, policy, steps), params
