"""One trajectory type: every producer returns it, no second one is defined, and its helpers keep shapes."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import numpy as np
import pytest

from simulator_harness.closed_loop import IDMEgo, SimParams, TrajectoryRecorder, build_batch, rollout, simulate, step
from simulator_harness.drive import DriveParams, ego_trajectory
from simulator_harness.errors import TrajectoryError
from simulator_harness.scenario import Actor, ActorKind, EgoSpec, Intent, RoadSpec, ScenarioSpec
from simulator_harness.seeds import CommonRoadScenario, load_commonroad
from simulator_harness.sensors import ImuModel, imu_readings, vehicle_state_readings
from simulator_harness.sensors.scene_rig import ego_at, rollout_track, scene_rig
from simulator_harness.trajectory import EGO, PER_AGENT, PER_STEP, Trajectory, require

ROOT = Path(__file__).resolve().parents[2]
US101 = ROOT / "tests" / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"
SPEC = ScenarioSpec(
    "walker", road=RoadSpec(lanes=2), ego=EgoSpec(0, 50.0, 15.0, 15.0), duration_s=2.0,
    actors=(Actor("lead", ActorKind.TRUCK, 0, 90.0, 14.0, Intent.KEEP_LANE, desired_speed_mps=14.0),
            Actor("walker", ActorKind.PEDESTRIAN, 0, 150.0, 0.0, Intent.CROSS, d_m=-2.5)))
_POSITION_FIELDS = {"x_m", "y_m", "yaw_rad", "speed_mps"}


def _trajectory_like_classes() -> list[str]:
    """Classes in the production packages and bench that declare a time axis (``t_s`` annotated as
    anything but a scalar) next to positions or speeds: a trajectory type, wherever it is."""
    found = []
    for pkg in ("simulator_harness", "hil", "bench"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef):
                    continue
                fields = {st.target.id: ast.unparse(st.annotation) for st in node.body
                          if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)}
                if fields.get("t_s", "float") not in ("float", "int") and _POSITION_FIELDS & set(fields):
                    found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def test_there_is_exactly_one_trajectory_type() -> None:
    assert _trajectory_like_classes() == ["simulator_harness/trajectory.py:Trajectory"]


def test_every_producer_returns_the_one_type() -> None:
    specs = [SPEC, SPEC]
    traj, params = simulate(specs, IDMEgo())
    state, _ = build_batch(specs)
    recorder = TrajectoryRecorder(state, 3)
    for _ in range(3):
        recorder.record(state)
        state = step(state, IDMEgo().act(state, params), params)
    one = rollout_track(SPEC)
    t = np.arange(20) / 200.0
    produced = {
        "simulate": traj, "rollout": rollout(*build_batch(specs), IDMEgo(), 4), "recorder": recorder.result(),
        "ego_trajectory": ego_trajectory(DriveParams(), t), "rollout_track": one, "ego_at": ego_at(one, t),
        "commonroad": load_commonroad(US101).trajectories,
    }
    assert {name: type(value) for name, value in produced.items()} == dict.fromkeys(produced, Trajectory)
    assert traj.shape == (2, 3, 21) and traj.batch_shape == (2,)
    assert produced["recorder"].shape == (2, 3, 3) and produced["rollout"].shape == (2, 3, 5)
    assert produced["ego_trajectory"].shape == produced["ego_at"].shape == (1, 20)
    assert one.shape == (3, 21) and produced["commonroad"].shape == (22, 101)
    assert require(traj.kind, "kind")[0].tolist() == ["car", "truck", "pedestrian"]
    # The annotations say the same, so the type checker holds every producer and consumer to it.
    assert typing.get_type_hints(simulate)["return"] == tuple[Trajectory, SimParams]
    for func in (rollout, TrajectoryRecorder.result, ego_trajectory, rollout_track, ego_at):
        assert typing.get_type_hints(func)["return"] is Trajectory, func
    assert typing.get_type_hints(CommonRoadScenario)["trajectories"] is Trajectory
    for consumer in (imu_readings, vehicle_state_readings, scene_rig):
        assert typing.get_type_hints(consumer)["traj" if consumer is not scene_rig else "track"] is Trajectory


def test_scenario_agents_and_steps_select_without_changing_values() -> None:
    traj, _ = simulate([SPEC, SPEC], IDMEgo())
    second = traj.scenario(1)
    assert second.shape == (3, 21) and second.batch_shape == ()
    for name in PER_STEP + PER_AGENT:
        value = getattr(traj, name)
        assert (getattr(second, name) is None) == (value is None), name
        if value is not None:
            assert np.array_equal(getattr(second, name), value[1]), name
    lead = second.agents(1)
    assert lead.shape == (1, 21) and require(lead.kind, "kind").tolist() == ["truck"]
    assert np.array_equal(lead.x_m[0], second.x_m[1])
    pair = traj.agents([EGO, 2])
    assert pair.shape == (2, 2, 21) and require(pair.length_m, "length_m").shape == (2, 2)
    first_second = second.steps(slice(0, 11))
    assert first_second.n_steps == 11 and first_second.duration_s == pytest.approx(1.0)
    assert np.array_equal(first_second.speed_mps, second.speed_mps[:, :11])


def test_inconsistent_shapes_and_missing_fields_are_typed_errors() -> None:
    t = np.arange(4) * 0.1
    xy = np.zeros((2, 4))
    ok = {"t_s": t, "x_m": xy, "y_m": xy, "yaw_rad": xy, "speed_mps": xy, "accel_mps2": xy,
          "valid": np.ones((2, 4), dtype=bool)}
    Trajectory(**ok)
    with pytest.raises(TrajectoryError, match=r"speed_mps has shape \(2, 3\), expected \(2, 4\)"):
        Trajectory(**{**ok, "speed_mps": np.zeros((2, 3))})
    with pytest.raises(TrajectoryError, match=r"length_m has shape \(4,\), expected \(2,\)"):
        Trajectory(**ok, length_m=np.ones(4))
    with pytest.raises(TrajectoryError, match=r"x_m has shape \(2, 4\) and t_s \(5,\)"):
        Trajectory(**{**ok, "t_s": np.arange(5) * 0.1})
    with pytest.raises(TrajectoryError, match="valid has dtype float64"):
        Trajectory(**{**ok, "valid": np.ones((2, 4))})
    bare = Trajectory(**ok)
    with pytest.raises(TrajectoryError, match="no batch axis"):
        bare.scenario(0)
    # The closed loop records no vehicle-bus signals: the IMU says which one it misses.
    batch, _ = simulate([SPEC], IDMEgo())
    with pytest.raises(TrajectoryError, match="imu_readings takes one scenario"):
        imu_readings(batch, ImuModel(), np.random.default_rng(0))
    with pytest.raises(TrajectoryError, match="no lat_accel_mps2"):
        vehicle_state_readings(batch.scenario(0))
