"""LiDAR: a few thousand LIDAR_DTYPE points a sweep, ground rings, the lead vehicle at its range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.payloads import LIDAR_DTYPE, decode_points
from simulator_harness.drive import DriveParams, ego_trajectory, scene_at
from simulator_harness.errors import SensorConfigError
from simulator_harness.sensors import LIDAR_SPEC, LidarModel, LidarScanner, LidarSensor
from simulator_harness.trajectory import EGO


def _sweep(t_s: float, seed: int = 0) -> np.ndarray:
    params = DriveParams()
    tr = ego_trajectory(params, t_s)
    return LidarScanner(LidarModel()).sweep(float(tr.x_m[EGO, 0]), float(tr.y_m[EGO, 0]),
                                            float(tr.yaw_rad[EGO, 0]), scene_at(params, t_s), np.random.default_rng(seed))


def _lead_gap_m(t_s: float) -> float:
    """Distance from the sensor (above the ego origin) to the lead vehicle's rear face."""
    params = DriveParams()
    return scene_at(params, t_s)[0].center_x_m - 4.6 / 2 - float(ego_trajectory(params, t_s).x_m[EGO, 0])


def test_sweep_shape_and_fields() -> None:
    pts = _sweep(2.0)
    model = LidarModel()
    assert pts.dtype == LIDAR_DTYPE
    assert 2000 <= len(pts) <= 20000
    assert set(np.unique(pts["ring"]).tolist()) <= set(range(model.n_rings))
    assert np.all(np.diff(pts["t_offset_ns"]) >= 0)  # firing order
    assert pts["t_offset_ns"][0] == 0 and pts["t_offset_ns"][-1] < model.sweep_ns
    assert np.all((pts["intensity"] >= 0) & (pts["intensity"] <= 255))
    ranges = np.sqrt(pts["x"] ** 2 + pts["y"] ** 2 + pts["z"] ** 2)
    assert ranges.max() <= model.max_range_m + 0.2


def test_lowest_ring_draws_a_ground_circle() -> None:
    model = LidarModel()
    pts = _sweep(2.0)
    ring0 = pts[pts["ring"] == 0]
    expected_m = model.mount_z_m / math.tan(math.radians(-model.elev_min_deg))
    horizontal = np.hypot(ring0["x"], ring0["y"])
    assert len(ring0) == model.n_azimuth  # nothing stands within 4 m of the car
    assert np.median(horizontal) == pytest.approx(expected_m, abs=0.02)
    assert np.abs(ring0["z"] + model.mount_z_m).max() < 0.1


@pytest.mark.parametrize("t_s", [2.0, 12.5])
def test_lead_vehicle_hits_at_the_right_range(t_s: float) -> None:
    pts = _sweep(t_s)
    on_car = pts[(np.abs(pts["y"]) < 0.9) & (pts["x"] > 2.0) & (pts["z"] > -1.5) & (pts["x"] < 80.0)]
    gap = _lead_gap_m(t_s)
    assert len(on_car) >= 5
    assert on_car["x"].min() == pytest.approx(gap, abs=0.1)
    assert np.median(on_car["x"]) == pytest.approx(gap, abs=0.1)  # a flat rear face
    assert np.median(on_car["intensity"]) == pytest.approx(60.0, abs=5.0)


def test_lane_lines_are_brighter_than_asphalt() -> None:
    pts = _sweep(2.0)
    ground = pts[np.abs(pts["z"] + 1.8) < 0.1]
    on_line = np.abs(np.abs(ground["y"] + float(ego_trajectory(DriveParams(), 2.0).y_m[EGO, 0])) - 1.85) < 0.05
    assert on_line.any()
    assert np.median(ground["intensity"][on_line]) > 3 * np.median(ground["intensity"][~on_line])


def test_sensor_payload_is_deterministic_per_seed_and_tick() -> None:
    params = DriveParams()
    a = LidarSensor(params, LidarModel(), LIDAR_SPEC, seed=7)
    b = LidarSensor(params, LidarModel(), LIDAR_SPEC, seed=7)
    c = LidarSensor(params, LidarModel(), LIDAR_SPEC, seed=8)
    late = bytes(a.capture(25)[0].payload)
    assert bytes(b.capture(3)[0].payload) != late
    assert bytes(b.capture(25)[0].payload) == late  # independent of what was captured before
    assert bytes(c.capture(25)[0].payload) != late
    pts = decode_points(a.capture(25)[0].payload, LIDAR_DTYPE)
    assert len(pts) > 2000


def test_bad_model_is_a_typed_error() -> None:
    with pytest.raises(SensorConfigError, match="elevations"):
        LidarModel(elev_min_deg=10.0, elev_max_deg=5.0)
