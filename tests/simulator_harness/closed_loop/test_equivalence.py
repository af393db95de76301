"""The fast step computes exactly what the plain one did: incremental lane index, golden rollouts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator_harness.closed_loop import IDMEgo, SimState, build_batch, free_flow_spec, simulate, step
from simulator_harness.closed_loop.neighbours import LaneIndex, build_index
from simulator_harness.scenario import (
    Actor,
    ActorKind,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    RoadType,
    ScenarioSpec,
)

_STATE_FIELDS = ("x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "s_m", "d_m", "vd_mps", "lane", "valid")
_INDEX_FIELDS = ("key", "group", "agent", "s_m", "half_m", "speed_mps", "own_agent", "own_pos", "entry_id")


def mixed_batch() -> list[ScenarioSpec]:
    """Free flow with lane changes, a cut-in (straddler), a hard brake and a crossing pedestrian."""
    road = RoadSpec()
    rng = np.random.default_rng(11)
    specs = [free_flow_spec(road, 14, rng, name=f"ff{i}", duration_s=15.0) for i in range(12)]
    specs.append(ScenarioSpec(
        name="cut", ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0),
        actors=(Actor("car", lane=1, s_m=68.0, speed_mps=16.0, intent=Intent.KEEP_LANE, desired_speed_mps=16.0),),
        events=(Event(EventKind.CUT_IN, "car", 1.0),)))
    specs.append(ScenarioSpec(
        name="brake", ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0),
        actors=(Actor("lead", lane=0, s_m=90.0, speed_mps=20.0, intent=Intent.KEEP_LANE, desired_speed_mps=20.0),
                Actor("walker", kind=ActorKind.PEDESTRIAN, lane=0, s_m=160.0, d_m=-2.5, intent=Intent.CROSS)),
        events=(Event(EventKind.LEAD_HARD_BRAKE, "lead", 2.0, {"decel_mps2": 6.0, "jerk_mps3": 15.0}),)))
    return specs


def junction_batch() -> list[ScenarioSpec]:
    """Crossing traffic (indexed on the main lanes it crosses), with and without a red-light runner."""
    road = RoadSpec(kind=RoadType.INTERSECTION, lanes=2, cross_lanes=1, length_m=400.0, signal_cycle_s=40.0,
                    main_green_s=10.0)
    return [ScenarioSpec(
        name=f"junction{runner}", road=road, duration_s=14.0,
        events=(Event(EventKind.RED_LIGHT_RUNNER, "cross", 0.0, {"speed_mps": 12.0}),) if runner else (),
        ego=EgoSpec(lane=0, s_m=120.0, speed_mps=12.0, desired_speed_mps=12.0),
        actors=(Actor("cross", lane=2, s_m=40.0, speed_mps=10.0, intent=Intent.KEEP_LANE, desired_speed_mps=10.0),))
        for runner in (False, True)]


def assert_same_index(a: LaneIndex, b: LaneIndex) -> None:
    for name in _INDEX_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_incremental_lane_index_equals_a_full_sort_every_step() -> None:
    state, params = build_batch(mixed_batch())
    policy = IDMEgo()
    plain = state
    straddled = foreign = reordered = 0
    for _ in range(150):
        hinted = build_index(state, params.road, state.lane_order_hint)
        full = build_index(state, params.road)
        assert_same_index(hinted, full)
        straddled += int(np.count_nonzero(hinted.entry_id // state.x_m.size == 1))
        foreign += int(np.count_nonzero(hinted.entry_id // state.x_m.size == 2))
        if state.lane_order_hint is not None and not np.array_equal(state.lane_order_hint, hinted.entry_id):
            reordered += 1
        state = step(state, policy.act(state, params), params)
        # The same rollout with the hint thrown away before every step: the full sort each time.
        plain = step(dataclasses.replace(plain, lane_order_hint=None), policy.act(plain, params), params)
        for name in _STATE_FIELDS:
            assert np.array_equal(getattr(state, name), getattr(plain, name)), name
    assert straddled > 0 and foreign > 0 and reordered > 0  # every kind of entry and order change was seen


def _clipped_tie(state: SimState) -> SimState:
    """Two cars of one lane far behind the road start: their sort keys clip to the same value."""
    s_m = state.s_m.copy()
    lane = state.lane.copy()
    lane[0, 1:3] = lane[0, 0]
    s_m[0, 1], s_m[0, 2] = -5000.0, -6000.0
    return dataclasses.replace(state, s_m=s_m, lane=lane)


@pytest.mark.parametrize("hint", ["shuffled", "repeated", "out_of_range", "empty", "tie"])
def test_any_hint_gives_the_index_of_a_full_sort(hint: str) -> None:
    state, params = build_batch(mixed_batch())
    state = step(state, IDMEgo().act(state, params), params)
    good = state.lane_order_hint
    assert good is not None
    rng = np.random.default_rng(3)
    bad = {"shuffled": rng.permutation(good), "repeated": np.repeat(good[:10], 5),
           "out_of_range": np.concatenate([good, [-7, 10**9]]), "empty": good[:0],
           "tie": good[::-1]}[hint]  # reversed: equal keys meet in the opposite order to a full sort's
    if hint == "tie":
        state = _clipped_tie(state)
        keys = build_index(state, params.road).key
        assert np.count_nonzero(np.diff(keys) == 0) > 0
    assert_same_index(build_index(state, params.road, bad), build_index(state, params.road))


# Agent-weighted sums of every recorded field, produced by the step before it was made faster
# (commit d2c17dd, where each step did a full stable sort and plain NumPy expressions). Here they
# match to the last bit; the tolerance only absorbs libm rounding that may differ between machines.
GOLDEN = {
    "mixed": ((14, 15, 151), 25675, 26427, {
        "x_m": 64179024.09032854, "y_m": 841270.7478603639, "yaw_rad": 740.3192189212671,
        "speed_mps": 4465956.225163613, "accel_mps2": 19173.70394760362, "s_m": 64106544.09032854,
        "d_m": -1065.2171396361362}),
    "junction": ((2, 2, 141), 564, 564, {
        "x_m": 169193.0508864784, "y_m": 479.4324440156788, "yaw_rad": 885.9291283123216,
        "speed_mps": 7610.5868000116025, "accel_mps2": -85.891517938333, "s_m": 112285.48333049408, "d_m": 0.0}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rollouts_match_the_golden_checksums(name: str) -> None:
    specs = mixed_batch() if name == "mixed" else junction_batch()
    traj, _ = simulate(specs, IDMEgo())
    shape, lane_sum, valid_sum, sums = GOLDEN[name]
    assert traj.shape == shape
    assert traj.lane is not None
    assert int(traj.lane.sum()) == lane_sum and int(traj.valid.sum()) == valid_sum
    weight = 1.0 + np.arange(traj.shape[1])[None, :, None]  # agent-weighted: swapping agents shows
    for field, expected in sums.items():
        assert float((getattr(traj, field) * weight).sum()) == pytest.approx(expected, rel=1e-9, abs=1e-9), field
