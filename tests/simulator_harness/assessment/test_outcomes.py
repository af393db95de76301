"""Outcome metrics against hand-computed values, on trajectories built by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from simulator_harness.assessment import outcomes as metrics
from simulator_harness.closed_loop import Road, build_road
from simulator_harness.closed_loop.state import DT_S
from simulator_harness.scenario import RoadSpec
from simulator_harness.trajectory import Trajectory

ROAD: Road = build_road(RoadSpec(lanes=2, length_m=500.0))


def trajectory(agents: list[dict[str, Any]], steps: int) -> Trajectory:
    """Agents given by x, y, yaw, v, a (scalars or (T,) arrays); cars of 4.6 × 1.9 m on lane 0."""
    def col(name: str, default: float) -> np.ndarray:
        return np.stack([np.broadcast_to(np.asarray(a.get(name, default), dtype=float), (steps,))
                         for a in agents])[None]

    x = col("x", 0.0)
    return Trajectory(
        t_s=np.asarray(np.arange(steps) * DT_S, dtype=np.float64), x_m=x, y_m=col("y", 0.0),
        yaw_rad=col("yaw", 0.0), speed_mps=col("v", 0.0),
        accel_mps2=col("a", 0.0), s_m=x.copy(), d_m=np.zeros_like(x), lane=np.zeros(x.shape, dtype=np.int64),
        valid=np.ones(x.shape, dtype=bool), kind=np.full((1, len(agents)), "car"),
        length_m=np.full((1, len(agents)), 4.6), width_m=np.full((1, len(agents)), 1.9))


def test_min_ttc_constant_velocity_projection() -> None:
    # Bumper gap 20 - 4.6 = 15.4 m closed at 10 m/s: first overlapping 0.1 s step is 1.6 s.
    traj = trajectory([{"x": 0.0, "v": 10.0}, {"x": 20.0}], steps=1)
    assert metrics.get("min_ttc")(traj, ROAD).value[0] == pytest.approx(1.6)
    far = trajectory([{"x": 0.0, "v": 10.0}, {"x": 60.0}], steps=1)  # 5.5 s away: beyond 3 s
    assert metrics.get("min_ttc")(far, ROAD).value[0] == np.inf
    beside = trajectory([{"x": 0.0, "v": 10.0}, {"x": 20.0, "y": 3.5}], steps=1)
    assert metrics.get("min_ttc")(beside, ROAD).value[0] == np.inf


def test_required_deceleration_golden() -> None:
    # v_rel = 20 - 10, x_rel = 25 m bumper to bumper: a_req = 0 - 100 / 50 = -2.0
    lead = {"x": 25.0 + 4.6, "v": 10.0}
    traj = trajectory([{"x": 0.0, "v": 20.0}, lead], steps=1)
    assert metrics.get("required_deceleration")(traj, ROAD).value[0] == pytest.approx(-2.0)
    braking = trajectory([{"x": 0.0, "v": 20.0}, {**lead, "a": -2.0}], steps=1)
    assert metrics.get("required_deceleration")(braking, ROAD).value[0] == pytest.approx(-4.0)
    other_lane = trajectory([{"x": 0.0, "v": 20.0}, {**lead, "y": 3.5}], steps=1)
    assert metrics.get("required_deceleration")(other_lane, ROAD).value[0] == 0.0


def crash_and_miss() -> tuple[Trajectory, Trajectory]:
    t = np.arange(30) * DT_S
    crash = trajectory([{"x": 10.0 * t, "v": 10.0}, {"x": 20.0}], steps=30)  # touches at t = 1.54 s
    miss = trajectory([{"x": 10.0 * t, "v": 10.0}, {"x": 20.0, "y": 2.0}], steps=30)  # 0.1 m lateral clearance
    return crash, miss


def check_collision_metric(metric: Callable[[Trajectory, Road], metrics.MetricResult]) -> None:
    crash, miss = crash_and_miss()
    assert metric(crash, ROAD).value[0] == 1.0, "a scenario built to collide must report the collision"
    assert metric(miss, ROAD).value[0] == 0.0


def test_collision_golden() -> None:
    check_collision_metric(metrics.get("collision"))
    crash, miss = crash_and_miss()
    hits = metrics.ego_overlaps(crash)[0, 1]
    assert hits.argmax() == 16 and not hits[:16].any()  # 16 m > 15.4 m gap; 15 m is not yet
    assert metrics.pairwise_collisions(crash).tolist() == [1]
    assert metrics.pairwise_collisions(miss).tolist() == [0]


def test_an_always_safe_metric_fails_the_golden_check() -> None:
    def always_safe(traj: Trajectory, road: Road) -> metrics.MetricResult:
        return metrics.MetricResult(np.zeros(traj.shape[0]), np.ones(traj.shape[0], dtype=bool))

    with pytest.raises(AssertionError, match="must report the collision"):
        check_collision_metric(always_safe)


def test_hard_brakes_count_episodes() -> None:
    a = np.array([0.0, -5.0, -5.0, 0.0, -6.0, 0.0, -3.0])
    traj = trajectory([{"a": a}], steps=7)
    assert metrics.get("hard_brakes")(traj, ROAD).value[0] == 2.0


def test_comfort_uses_nuplan_bounds() -> None:
    t = np.arange(40) * DT_S
    gentle = trajectory([{"x": 10 * t + t**2, "v": 10.0 + 2.0 * t}], steps=40)
    harsh = trajectory([{"x": 10 * t + 1.5 * t**2, "v": 10.0 + 3.0 * t}], steps=40)  # 3.0 > 2.40 m/s²
    weave = trajectory([{"v": 10.0, "yaw": 0.1 * np.sin(2 * np.pi * t)}], steps=40)  # yaw rate 0.63, accel 3.9
    assert metrics.get("comfort")(gentle, ROAD).value[0] == 1.0
    assert metrics.get("comfort")(harsh, ROAD).value[0] == 0.0
    assert metrics.get("comfort")(weave, ROAD).value[0] == 0.0
    kin = metrics.ego_kinematics(harsh)
    assert kin["lon_accel_mps2"][0] == pytest.approx(np.full(40, 3.0))


def test_off_road_and_speed_limit() -> None:
    on = trajectory([{"x": 50.0, "y": 0.5}], steps=3)  # right edge at -0.45, road edge at -1.75
    off = trajectory([{"x": 50.0, "y": -1.0}], steps=3)  # right corners at -1.95
    assert metrics.get("off_road")(on, ROAD).value[0] == 0.0
    assert metrics.get("off_road")(off, ROAD).value[0] == 1.0
    fast = trajectory([{"v": np.array([20.0, 27.0, 24.0])}], steps=3)
    assert metrics.get("speed_limit")(fast, ROAD).value[0] == pytest.approx(1.5)  # 27 - 25 - 0.5


def test_registry() -> None:
    assert {"collision", "min_ttc", "required_deceleration", "hard_brakes", "off_road", "comfort",
            "red_light", "speed_limit"} <= set(metrics.METRICS)
    with pytest.raises(KeyError, match="unknown metric"):
        metrics.get("vibes")
    crash, _ = crash_and_miss()
    results = metrics.compute_all(crash, ROAD)
    assert results["collision"].value[0] == 1.0 and results["collision"].valid[0]
    assert results["min_ttc"].value[0] == 0.0  # overlapping at the step of the collision
