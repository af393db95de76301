"""The full seed sensor suite on the demo drive: 8 cameras, 3 LiDARs, 5 radars, IMU, RTK GNSS, CAN.

CPU budget: eight live 30 fps H.265 cameras would need several cores, so each camera renders and
encodes ``loop_frames`` frames of the drive once, at a modest size (320x180 by default), as one
closed GOP starting with an IDR picture, and then loops those access units: every loop restarts at
a keyframe, so any receiver can decode any second of it. The LiDARs and radars are cast live against
the drive's boxes (lead vehicle with its real speed, parked cars, posts). The GNSS reports RTK
fixed, except inside ``rtk_float_s`` windows (an overpass) where it reports RTK float with a
decimetre error; vehicle state reports the driver taking over after the hard brake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, encode_points, encode_small
from simulator_harness.drive import DriveParams, ego_trajectory, longitudinal, scene_at
from simulator_harness.errors import SensorConfigError
from simulator_harness.sensors.base import Capture, Sensor, SensorSpec, sample_rng
from simulator_harness.sensors.camera import CameraModel, CameraRenderer
from simulator_harness.sensors.encoder import H265Encoder
from simulator_harness.sensors.lidar import LidarModel
from simulator_harness.sensors.motion import GnssModel, ImuModel, gnss_readings
from simulator_harness.sensors.radar import RadarModel, radar_returns
from simulator_harness.sensors.rig import GNSS_SPEC, IMU_SPEC, VEHICLE_STATE_SPEC, ImuSensor, VehicleStateSensor
from simulator_harness.sensors.scene import Bodies, BodyLidar, Mount
from simulator_harness.trajectory import EGO

#: Cameras: (name, yaw from the heading in degrees, horizontal field of view in degrees).
CAMERAS = (("front", 0.0, 70.0), ("front_left", 55.0, 100.0), ("front_right", -55.0, 100.0),
           ("left", 90.0, 100.0), ("right", -90.0, 100.0), ("rear_left", 135.0, 100.0),
           ("rear_right", -135.0, 100.0), ("rear", 180.0, 70.0))
#: LiDARs: (name, mount, model, rate Hz).
LIDARS = (
    ("top", Mount(0.0, 0.0, 1.8), LidarModel(), 10.0),
    ("front_left", Mount(3.6, 0.8, 0.6, math.radians(45)),
     LidarModel(n_rings=8, elev_min_deg=-10, elev_max_deg=10, n_azimuth=180, sweep_ns=50_000_000), 20.0),
    ("front_right", Mount(3.6, -0.8, 0.6, math.radians(-45)),
     LidarModel(n_rings=8, elev_min_deg=-10, elev_max_deg=10, n_azimuth=180, sweep_ns=50_000_000), 20.0),
)
#: Radars: (name, mount, model), all at 20 Hz.
RADARS = (
    ("front", Mount(3.7, 0.0, 0.5), RadarModel(fov_deg=40.0, max_range_m=200.0)),
    ("front_left", Mount(3.4, 0.9, 0.5, math.radians(60)), RadarModel(fov_deg=120.0, max_range_m=80.0)),
    ("front_right", Mount(3.4, -0.9, 0.5, math.radians(-60)), RadarModel(fov_deg=120.0, max_range_m=80.0)),
    ("rear_left", Mount(-0.9, 0.9, 0.5, math.radians(135)), RadarModel(fov_deg=120.0, max_range_m=80.0)),
    ("rear_right", Mount(-0.9, -0.9, 0.5, math.radians(-135)), RadarModel(fov_deg=120.0, max_range_m=80.0)),
)
RADAR_RATE_HZ = 20.0
_LIDAR_STREAM, _RADAR_STREAM, _GNSS_STREAM = 21, 31, 41


def drive_bodies(drive: DriveParams, t_s: float) -> Bodies:
    """The demo drive's boxes at ``t_s`` as bodies; the lead vehicle (first) moves at its real speed."""
    boxes = scene_at(drive, t_s)
    lead_brake_s = max(drive.brake_at_s - drive.lead_brake_lead_s, 0.0)
    _, v, _ = longitudinal(t_s, drive.cruise_speed_mps, lead_brake_s, drive.brake_decel_mps2, drive.brake_jerk_mps3)
    vx = np.zeros(len(boxes))
    vx[0] = float(v)
    return Bodies.from_boxes(boxes, vx)


def _ego(drive: DriveParams, t_s: float) -> tuple[float, float, float, float, float]:
    """Ego ``(x, y, yaw, vx, vy)`` at ``t_s``."""
    e = ego_trajectory(drive, t_s)
    x, y, yaw, v = float(e.x_m[EGO, 0]), float(e.y_m[EGO, 0]), float(e.yaw_rad[EGO, 0]), float(e.speed_mps[EGO, 0])
    return x, y, yaw, v * math.cos(yaw), v * math.sin(yaw)


class LoopedCamera:
    """Renders and encodes ``loop_frames`` frames once, then loops the access units (see above)."""

    def __init__(self, drive: DriveParams, model: CameraModel, mount: Mount, spec: SensorSpec,
                 loop_frames: int = 30) -> None:
        self.spec = spec
        renderer = CameraRenderer(model)
        encoder = H265Encoder(model.width_px, model.height_px, fps=round(spec.rate_hz), keyint=loop_frames)
        self.units: list[Capture] = []
        for k in range(loop_frames):
            t = k / spec.rate_hz
            x, y, yaw = mount.world_pose(*_ego(drive, t)[:3])
            frame = renderer.render(x, y, yaw, scene_at(drive, t))
            self.units += [Capture(au.payload, au.keyframe) for au in encoder.encode(frame)]
        self.units += [Capture(au.payload, au.keyframe) for au in encoder.flush()]

    def capture(self, index: int) -> list[Capture]:
        """Access unit ``index`` of the loop."""
        return [self.units[index % len(self.units)]]


class DriveLidar:
    """A :class:`BodyLidar` cast live against the drive's boxes."""

    def __init__(self, drive: DriveParams, lidar: BodyLidar, spec: SensorSpec, seed: int, stream: int) -> None:
        self.spec, self.drive, self.lidar, self.seed, self.stream = spec, drive, lidar, seed, stream

    def capture(self, index: int) -> list[Capture]:
        """One sweep."""
        t = index / self.spec.rate_hz
        x, y, yaw, _, _ = _ego(self.drive, t)
        points = self.lidar.sweep(x, y, yaw, drive_bodies(self.drive, t), sample_rng(self.seed, self.stream, index))
        return [Capture(encode_points(points, LIDAR_DTYPE))]


class DriveRadar:
    """Radar returns with Doppler of the drive's boxes."""

    def __init__(self, drive: DriveParams, model: RadarModel, mount: Mount, spec: SensorSpec, seed: int,
                 stream: int) -> None:
        self.spec, self.drive, self.model, self.mount = spec, drive, model, mount
        self.seed, self.stream = seed, stream

    def capture(self, index: int) -> list[Capture]:
        """One scan."""
        t = index / self.spec.rate_hz
        returns = radar_returns(self.model, self.mount, *_ego(self.drive, t), drive_bodies(self.drive, t),
                                sample_rng(self.seed, self.stream, index))
        return [Capture(encode_points(returns, RADAR_DTYPE))]


@dataclass(frozen=True)
class RtkGnss:
    """GNSS fixes whose RTK status follows ``rtk_float_s``: fixed (4) outside, float (5) inside."""

    drive: DriveParams
    seed: int
    rtk_float_s: tuple[tuple[float, float], ...] = ((4.0, 6.0),)
    spec: SensorSpec = GNSS_SPEC

    def capture(self, index: int) -> list[Capture]:
        """The fix of tick ``index``."""
        t = index / self.spec.rate_hz
        floating = any(a <= t < b for a, b in self.rtk_float_s)
        model = GnssModel(h_noise_m=0.15, fix_type=5) if floating else GnssModel()
        fix = gnss_readings(ego_trajectory(self.drive, t), model, sample_rng(self.seed, _GNSS_STREAM, index))[0]
        return [Capture(encode_small(fix))]


def full_suite(drive: DriveParams, seed: int = 0, width_px: int = 320, height_px: int = 180,
               loop_frames: int = 30, n_lidars: int = 3, n_radars: int = 5,
               rtk_float_s: tuple[tuple[float, float], ...] = ((4.0, 6.0),)) -> list[Sensor]:
    """The seed suite: 8 looped H.265 cameras at 30 fps, ``n_lidars`` (1-3) LiDARs at 10-20 Hz,
    ``n_radars`` (1-5) radars at 20 Hz, IMU 200 Hz, RTK GNSS 10 Hz (float inside ``rtk_float_s``)
    and vehicle state 50 Hz. Unless the drive says otherwise, the driver takes over 1 s after the
    hard brake."""
    if not (1 <= n_lidars <= len(LIDARS) and 1 <= n_radars <= len(RADARS)):
        raise SensorConfigError(f"the suite has 1-{len(LIDARS)} LiDARs and 1-{len(RADARS)} radars, got "
                                f"{n_lidars} and {n_radars}")
    if drive.disengage_at_s is None:
        drive = replace(drive, disengage_at_s=drive.brake_at_s + 1.0)
    sensors: list[Sensor] = []
    for name, yaw_deg, fov in CAMERAS:
        spec = SensorSpec(f"camera/{name}", f"cam_{name}", "h265", 30.0)
        camera = CameraModel(width_px=width_px, height_px=height_px, hfov_deg=fov)
        sensors.append(LoopedCamera(drive, camera, Mount(1.5, 0.0, 1.4, math.radians(yaw_deg)), spec, loop_frames))
    for i, (name, mount, model, rate) in enumerate(LIDARS[:n_lidars]):
        spec = SensorSpec(f"lidar/{name}", f"lidar_{name}", "lidar_points_v1", rate, threaded=True)
        sensors.append(DriveLidar(drive, BodyLidar(model, mount), spec, seed, _LIDAR_STREAM + i))
    for i, (name, mount, radar) in enumerate(RADARS[:n_radars]):
        spec = SensorSpec(f"radar/{name}", f"radar_{name}", "radar_v1", RADAR_RATE_HZ)
        sensors.append(DriveRadar(drive, radar, mount, spec, seed, _RADAR_STREAM + i))
    sensors += [ImuSensor(drive, ImuModel(), IMU_SPEC, seed), RtkGnss(drive, seed, rtk_float_s),
                VehicleStateSensor(drive, VEHICLE_STATE_SPEC)]
    return sensors
