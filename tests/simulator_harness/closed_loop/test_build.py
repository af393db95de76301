"""Building batches: shapes, the no-overlap guarantee, and the purity of ``step``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulator_harness.closed_loop import (
    BlindEgo,
    IDMEgo,
    SimulationError,
    boxes_overlap,
    build_batch,
    free_flow_spec,
    step,
)
from simulator_harness.closed_loop.geometry import Box
from simulator_harness.scenario import Actor, EgoSpec, Intent, RoadSpec, ScenarioSpec
from simulator_harness.trajectory import EGO


def test_generator_never_places_overlapping_or_tailgating_vehicles() -> None:
    rng = np.random.default_rng(7)
    road = RoadSpec(lanes=2, length_m=600.0)
    specs = [free_flow_spec(road, 14, rng, name=f"s{i}") for i in range(30)]
    state, _ = build_batch(specs)  # raises on any overlap
    assert state.shape == (30, 15) and state.valid.all()
    for spec in specs:
        cars = [(spec.ego.lane, spec.ego.s_m, spec.ego.speed_mps)] + [(a.lane, a.s_m, a.speed_mps) for a in spec.actors]
        for lane in range(road.lanes):
            s = sorted((c[1], c[2]) for c in cars if c[0] == lane)
            for (s0, _), (s1, _) in itertools.pairwise(s):
                assert s1 - s0 - 10.0 >= 2.0 - 1e-9  # bumper gap >= 2 m even for two trucks


def test_generator_says_when_the_road_is_too_full() -> None:
    with pytest.raises(SimulationError, match="cannot place 60 vehicles"):
        free_flow_spec(RoadSpec(lanes=1, length_m=100.0), 60, np.random.default_rng(0))


def test_overlapping_spec_is_rejected_naming_both() -> None:
    spec = ScenarioSpec(name="bad", ego=EgoSpec(lane=0, s_m=50.0), actors=(Actor("twin", lane=0, s_m=52.0),))
    with pytest.raises(SimulationError, match="'ego' and 'twin' overlap"):
        build_batch([spec])


def test_batch_needs_one_road() -> None:
    with pytest.raises(SimulationError, match="share one road"):
        build_batch([ScenarioSpec(name="a"), ScenarioSpec(name="b", road=RoadSpec(lanes=2))])


def test_step_is_pure_and_moves_time() -> None:
    spec = ScenarioSpec(name="one", ego=EgoSpec(lane=1, s_m=10.0, speed_mps=10.0),
                        actors=(Actor("a", lane=1, s_m=60.0, speed_mps=10.0),))
    state, params = build_batch([spec], n_agents=4)
    x_before = state.x_m.copy()
    new = step(state, BlindEgo().act(state, params), params)
    assert np.array_equal(state.x_m, x_before)
    assert new.t_s == pytest.approx(0.1) and new.step_index == 1
    assert new.x_m[0, EGO] == pytest.approx(11.0)
    assert not new.valid[0, 2:].any()  # padding slots stay invalid


def test_sat_overlap_cases() -> None:
    def box(x: float, y: float, yaw: float) -> Box:
        return (np.array(x), np.array(y), np.array(yaw), np.array(4.0), np.array(2.0))

    assert boxes_overlap(box(0, 0, 0), box(3.9, 0, 0))
    assert not boxes_overlap(box(0, 0, 0), box(4.1, 0, 0))
    # Rotated 45°: corner reach along x is (4+2)/(2·sqrt 2) ≈ 2.12, so 2 + 2.12 < 4.2 separates.
    assert not boxes_overlap(box(0, 0, 0), box(4.2, 0, np.pi / 4))
    assert boxes_overlap(box(0, 0, 0), box(4.0, 0, np.pi / 4))
    # Axis-aligned bounding boxes would overlap here; SAT on the rotated axis separates them.
    assert not boxes_overlap(box(0, 0, np.pi / 4), box(2.6, -2.6, np.pi / 4))


def test_idm_ego_follows_without_touching() -> None:
    spec = ScenarioSpec(name="follow", ego=EgoSpec(lane=0, s_m=0.0, speed_mps=25.0, desired_speed_mps=30.0),
                        actors=(Actor("slow", lane=0, s_m=60.0, speed_mps=10.0, desired_speed_mps=10.0,
                                      intent=Intent.KEEP_LANE),))
    from simulator_harness.closed_loop import simulate

    traj, _ = simulate([spec], IDMEgo())
    gap = traj.x_m[0, 1] - traj.x_m[0, 0] - 4.6
    assert gap.min() > 2.0
    assert traj.speed_mps[0, 0, -1] < 12.0  # it slowed down to the leader's speed
