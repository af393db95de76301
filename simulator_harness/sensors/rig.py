"""The demo sensor rig: one camera, one LiDAR, IMU, GNSS and vehicle state on a drive.

Each class adapts a pure model to the :class:`~simulator_harness.sensors.base.Sensor` protocol:
it turns ``(index, t_s)`` into the ego pose and scene at that instant and encodes the reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics
from shared.payloads import LIDAR_DTYPE, encode_points, encode_small
from simulator_harness.drive import DriveParams, ego_trajectory, scene_at
from simulator_harness.sensors.base import Capture, SensorSpec, sample_rng
from simulator_harness.sensors.camera import CameraModel, CameraRenderer
from simulator_harness.sensors.encoder import H265Encoder
from simulator_harness.sensors.lidar import LidarModel, LidarScanner
from simulator_harness.sensors.motion import (
    GnssModel,
    ImuModel,
    gnss_readings,
    imu_readings,
    vehicle_state_readings,
)
from simulator_harness.trajectory import EGO, Trajectory

# Noise stream ids for sample_rng, one per sensor, so sensors never share random numbers.
_LIDAR_STREAM, _IMU_STREAM, _GNSS_STREAM = 1, 2, 3
_T = TypeVar("_T")


class _Blocks(Generic[_T]):
    """Readings of ticks ``k / rate_hz`` computed a block at a time, vectorised over the block's
    trajectory; block ``b`` holds ticks ``[b * size, (b + 1) * size)`` and gets its own noise
    generator, so a reading depends only on its tick, never on when it is asked for."""

    def __init__(self, drive: DriveParams, rate_hz: float, make: Callable[[Trajectory, int], list[_T]],
                 size: int = 0) -> None:
        self.drive, self.rate_hz, self._make = drive, rate_hz, make
        self.size = size or max(round(rate_hz / 10), 1)
        self._block = -1
        self._items: list[_T] = []

    def get(self, k: int) -> _T:
        block = k // self.size
        if block != self._block:
            ticks = np.arange(block * self.size, (block + 1) * self.size)
            self._items = self._make(ego_trajectory(self.drive, ticks / self.rate_hz), block)
            self._block = block
        return self._items[k - block * self.size]


def _poses(traj: Trajectory, block: int) -> list[tuple[float, float, float]]:
    return list(zip(traj.x_m[EGO].tolist(), traj.y_m[EGO].tolist(), traj.yaw_rad[EGO].tolist(), strict=True))


class CameraSensor:
    """Renders the scene and encodes it to H.265, one access unit per frame."""

    def __init__(self, drive: DriveParams, model: CameraModel, spec: SensorSpec, keyint: int = 30) -> None:
        self.spec = spec
        self.drive = drive
        self.renderer = CameraRenderer(model)
        self.encoder = H265Encoder(model.width_px, model.height_px, fps=round(spec.rate_hz),
                                   keyint=keyint)
        self._poses = _Blocks(drive, spec.rate_hz, _poses)

    def capture(self, index: int) -> list[Capture]:
        """Render and encode frame ``index``; usually exactly one access unit."""
        x_m, y_m, yaw_rad = self._poses.get(index)
        frame = self.renderer.render(x_m, y_m, yaw_rad, scene_at(self.drive, index / self.spec.rate_hz))
        return [Capture(au.payload, au.keyframe) for au in self.encoder.encode(frame)]


class LidarSensor:
    """One sweep per capture as :data:`shared.payloads.LIDAR_DTYPE` bytes."""

    def __init__(self, drive: DriveParams, model: LidarModel, spec: SensorSpec, seed: int) -> None:
        self.spec, self.drive, self.seed = spec, drive, seed
        self.scanner = LidarScanner(model)
        self._poses = _Blocks(drive, spec.rate_hz, _poses)

    def capture(self, index: int) -> list[Capture]:
        x_m, y_m, yaw_rad = self._poses.get(index)
        points = self.scanner.sweep(x_m, y_m, yaw_rad, scene_at(self.drive, index / self.spec.rate_hz),
                                    sample_rng(self.seed, _LIDAR_STREAM, index))
        return [Capture(encode_points(points, LIDAR_DTYPE))]


class ImuSensor:
    """Specific force and angular rate with white noise, ``imu_v1``."""

    def __init__(self, drive: DriveParams, model: ImuModel, spec: SensorSpec, seed: int) -> None:
        self.spec, self.model = spec, model
        self._blocks = _Blocks(drive, spec.rate_hz, lambda traj, block: [
            encode_small(r) for r in imu_readings(traj, model, sample_rng(seed, _IMU_STREAM, block))])

    def capture(self, index: int) -> list[Capture]:
        return [Capture(self._blocks.get(index))]


class GnssSensor:
    """RTK fixes, ``gnss_v1``."""

    def __init__(self, drive: DriveParams, model: GnssModel, spec: SensorSpec, seed: int) -> None:
        self.spec, self.model = spec, model
        self._blocks = _Blocks(drive, spec.rate_hz, lambda traj, block: [
            encode_small(r) for r in gnss_readings(traj, model, sample_rng(seed, _GNSS_STREAM, block))])

    def capture(self, index: int) -> list[Capture]:
        return [Capture(self._blocks.get(index))]


class VehicleStateSensor:
    """The CAN view of the ego, ``vehicle_state_v1``."""

    def __init__(self, drive: DriveParams, spec: SensorSpec) -> None:
        self.spec = spec
        self._blocks = _Blocks(drive, spec.rate_hz, lambda traj, block: [
            encode_small(r) for r in vehicle_state_readings(traj)])

    def capture(self, index: int) -> list[Capture]:
        return [Capture(self._blocks.get(index))]


CAMERA_SPEC = SensorSpec("camera/front", "cam_front", "h265", 30.0, threaded=True)
LIDAR_SPEC = SensorSpec("lidar/top", "lidar_top", "lidar_points_v1", 10.0, threaded=True)
IMU_SPEC = SensorSpec("imu", "imu0", "imu_v1", 200.0)
VEHICLE_STATE_SPEC = SensorSpec("vehicle_state", "can0", "vehicle_state_v1", 50.0)
GNSS_SPEC = SensorSpec("gnss", "gnss0", "gnss_v1", 10.0)


def demo_rig(drive: DriveParams, seed: int = 0, width_px: int = 640, height_px: int = 360) -> list[
        CameraSensor | LidarSensor | ImuSensor | GnssSensor | VehicleStateSensor]:
    """The five sensors of the demo drive, at their interface rates."""
    return [
        CameraSensor(drive, CameraModel(width_px=width_px, height_px=height_px), CAMERA_SPEC),
        LidarSensor(drive, LidarModel(), LIDAR_SPEC, seed),
        ImuSensor(drive, ImuModel(), IMU_SPEC, seed),
        VehicleStateSensor(drive, VEHICLE_STATE_SPEC),
        GnssSensor(drive, GnssModel(), GNSS_SPEC, seed),
    ]


def demo_calibration(vehicle_id: str, valid_from_ns: int, camera: CameraModel | None = None,
                     lidar: LidarModel | None = None) -> CalibrationBundle:
    """The calibration matching the rig: camera intrinsics, camera and LiDAR extrinsics."""
    cam = camera or CameraModel()
    lid = lidar or LidarModel()
    # Optical frame (x right, y down, z forward) to vehicle frame (x forward, y left, z up).
    optical_to_vehicle = (0.5, -0.5, 0.5, -0.5)
    return CalibrationBundle(
        vehicle_id=vehicle_id, version="sim-demo-1", valid_from_ns=valid_from_ns, valid_to_ns=None,
        cameras=(CameraIntrinsics(CAMERA_SPEC.sensor_id, cam.width_px, cam.height_px, cam.fx, cam.fx,
                                  cam.cx, cam.cy, "plumb_bob", (0.0, 0.0, 0.0, 0.0, 0.0)),),
        extrinsics=(
            SensorExtrinsics(CAMERA_SPEC.sensor_id, optical_to_vehicle, (cam.mount_x_m, 0.0, cam.mount_z_m)),
            SensorExtrinsics(LIDAR_SPEC.sensor_id, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, lid.mount_z_m)),
        ),
        time_offsets_ns={},
    )


def frame_count(rate_hz: float, duration_s: float) -> int:
    """How many samples a sensor at ``rate_hz`` takes in ``[0, duration_s)``: ticks ``k / rate``."""
    return max(math.ceil(duration_s * rate_hz - 1e-9), 0)
