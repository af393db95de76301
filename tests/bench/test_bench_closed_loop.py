"""The closed-loop benchmark times what its figures are named for.

The full-step workload really fires every kind of event, moves pedestrians and cyclists across the
road, holds traffic at red lights, changes lanes with MOBIL and computes every outcome metric inside
the timed rollout; the free-flow workload has none of that; the limit really is an IDM update.
Counters and names are asserted, never timings.
"""

from __future__ import annotations

import numpy as np

from bench.bench_closed_loop import (
    FLOOR,
    PYTHON_LOOP,
    fixed_leaders,
    free_flow_batch,
    full_step,
    full_step_batch,
    idm_floor,
    run,
)
from bench.closed_loop_workload import AGENTS
from simulator_harness.assessment import METRICS
from simulator_harness.closed_loop import DT_S, IDMParams, idm_accel
from simulator_harness.scenario.spec import EventKind


def test_the_full_step_workload_exercises_events_walkers_signals_mobil_and_metrics() -> None:
    n = 6
    state, params = full_step_batch(n, 100)
    timed = full_step(state, params, 100)
    w = timed.workload
    assert state.shape == (n, AGENTS) and (w.scenarios, w.steps) == (n, 100)
    assert w.agents_by_kind["pedestrian"] == 10 * n and w.agents_by_kind["cyclist"] == 8 * n
    assert w.agents_by_kind["car"] + w.agents_by_kind["truck"] == 82 * n and w.agents_by_kind["truck"] > 0
    every_kind = {k.value: n for k in EventKind}
    assert w.events_scheduled == every_kind and w.events_fired == every_kind
    assert w.signalised_lanes == 6 and 0 < w.red_steps_main < 101  # both phases in the rollout
    assert w.held_at_red > 0 and w.ran_red > 0
    assert w.mobil_lane_changes > 0 and w.cut_in_lane_changes == n
    assert w.vru_crossing >= 4 * n  # at least the crossers, besides the jaywalker and the step-out
    assert w.metrics_valid == {name: n for name in METRICS}
    assert 0.0 < timed.metrics_s < timed.elapsed_s  # the metrics ran inside the timed region


def test_the_free_flow_workload_has_no_events_walkers_or_signals() -> None:
    state, params = free_flow_batch(3)
    w = full_step(state, params, 20).workload
    assert w.events_scheduled == {} and w.events_fired == {}
    assert w.agents_by_kind["pedestrian"] == 0 and w.agents_by_kind["cyclist"] == 0 and w.vru_crossing == 0
    assert w.signalised_lanes == 0 and w.red_steps_main == 0 and w.held_at_red == 0
    assert w.agents_by_kind["car"] + w.agents_by_kind["truck"] == 3 * AGENTS


def test_the_floor_is_one_idm_step_toward_each_agents_leader_in_its_lane() -> None:
    state, _ = free_flow_batch(3)
    leader, far = fixed_leaders(state)
    s, lane = state.s_m.ravel(), np.where(state.valid, state.lane, -1).ravel()
    n_a = state.shape[1]
    gap, v_lead = np.full(s.shape, np.inf), state.speed_mps.ravel().copy()
    for i in np.flatnonzero(lane >= 0):  # brute force: the nearest agent ahead in the same lane and scenario
        rows = np.arange(i // n_a * n_a, (i // n_a + 1) * n_a)
        ahead = rows[(lane[rows] == lane[i]) & (s[rows] > s[i])]
        if ahead.size:
            j = ahead[np.argmin(s[ahead])]
            assert leader[i] == j and far[i] == 0.0
            gap[i] = s[j] - s[i] - 0.5 * (state.length_m.ravel()[i] + state.length_m.ravel()[j])
            v_lead[i] = state.speed_mps.ravel()[j]
        else:
            assert np.isinf(far[i])
    v = state.speed_mps.ravel()
    expected = np.maximum(v + idm_accel(v, state.v0_mps.ravel(), gap, v - v_lead, IDMParams()) * DT_S, 0.0)
    _, got = idm_floor(state, 1, IDMParams())
    assert np.allclose(got, expected, rtol=0, atol=1e-12)


def test_quick_run_names_each_figure_for_its_workload_and_limit() -> None:
    figures = {f.name: f for f in run(quick=True)}
    assert set(figures) == {
        "closed_loop_full_step_scenario_steps_per_s", "closed_loop_full_step_agent_steps_per_s",
        "closed_loop_full_step_scenario_steps_per_s_vs_python_loop",
        "closed_loop_free_flow_scenario_steps_per_s", "closed_loop_free_flow_agent_steps_per_s"}
    for name, f in figures.items():
        assert f.value > 0 and f.limit > 0
        assert f.limit_name == (PYTHON_LOOP if name.endswith("_vs_python_loop") else FLOOR)
    full = figures["closed_loop_full_step_scenario_steps_per_s"]
    assert figures["closed_loop_full_step_scenario_steps_per_s_vs_python_loop"].value == full.value
    assert "200 events fired" in full.note and f"{len(METRICS)} outcome metrics" in full.note
