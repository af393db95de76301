"""Synthetic sensors for the demo drive: camera (H.265), LiDAR, IMU, GNSS and vehicle state."""

from simulator_harness.sensors.base import Capture, Sensor, SensorSpec, sample_rng
from simulator_harness.sensors.camera import CameraModel, CameraRenderer, i420_planes, i420_to_rgb
from simulator_harness.sensors.encoder import AccessUnit, H265Encoder, nal_unit_types
from simulator_harness.sensors.lidar import LidarModel, LidarScanner
from simulator_harness.sensors.motion import (
    GnssModel,
    ImuModel,
    enu_to_lat_lon,
    gnss_readings,
    imu_readings,
    vehicle_state_readings,
)
from simulator_harness.sensors.rig import (
    CAMERA_SPEC,
    GNSS_SPEC,
    IMU_SPEC,
    LIDAR_SPEC,
    VEHICLE_STATE_SPEC,
    CameraSensor,
    GnssSensor,
    ImuSensor,
    LidarSensor,
    VehicleStateSensor,
    demo_calibration,
    demo_rig,
    frame_count,
)

__all__ = [
    "CAMERA_SPEC", "GNSS_SPEC", "IMU_SPEC", "LIDAR_SPEC", "VEHICLE_STATE_SPEC",
    "AccessUnit", "CameraModel", "CameraRenderer", "CameraSensor", "Capture", "GnssModel",
    "GnssSensor", "H265Encoder", "ImuModel", "ImuSensor", "LidarModel", "LidarScanner",
    "LidarSensor", "Sensor", "SensorSpec", "VehicleStateSensor", "demo_calibration", "demo_rig",
    "enu_to_lat_lon", "frame_count", "gnss_readings", "i420_planes", "i420_to_rgb",
    "imu_readings", "nal_unit_types", "sample_rng", "vehicle_state_readings",
]
