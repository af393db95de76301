"""Replay of real recordings into the running service over a real ZeroMQ socket, with the
readers of each log format.
"""

from vehicle.replay.cli import (
    add_parser,
    check_speed,
    run,
)
from vehicle.replay.comma2k19 import (
    ACCEL_HALF_WINDOW_S,
    FRD_TO_FLU,
    GPS_EPOCH_UNIX_S,
    GPS_UTC_LEAP_S,
    NS,
    Comma2k19Segment,
    PoseTrack,
    ReplaySourceError,
    StateTrack,
    load_segment,
    pose_track,
    segment_messages,
    state_track,
)
from vehicle.replay.geodesy import (
    WGS84_A_M,
    WGS84_E2,
    WGS84_F,
    EnuFrame,
    ecef_to_enu_rotation,
    ecef_to_geodetic,
    forward_yaw_enu,
    geodetic_to_ecef,
    matrix_to_quaternion,
    quaternion_to_matrix,
)
from vehicle.replay.publish import (
    SOURCES,
    ZERO_COPY_BYTES,
    Replayer,
    ReplayPublishError,
    ReplayReport,
    load_source,
)
from vehicle.replay.smoothing import local_linear_fit

__all__ = [
    "ACCEL_HALF_WINDOW_S",
    "FRD_TO_FLU",
    "GPS_EPOCH_UNIX_S",
    "GPS_UTC_LEAP_S",
    "NS",
    "SOURCES",
    "WGS84_A_M",
    "WGS84_E2",
    "WGS84_F",
    "ZERO_COPY_BYTES",
    "Comma2k19Segment",
    "EnuFrame",
    "PoseTrack",
    "ReplayPublishError",
    "ReplayReport",
    "ReplaySourceError",
    "Replayer",
    "StateTrack",
    "add_parser",
    "check_speed",
    "ecef_to_enu_rotation",
    "ecef_to_geodetic",
    "forward_yaw_enu",
    "geodetic_to_ecef",
    "load_segment",
    "load_source",
    "local_linear_fit",
    "matrix_to_quaternion",
    "pose_track",
    "quaternion_to_matrix",
    "run",
    "segment_messages",
    "state_track",
]
