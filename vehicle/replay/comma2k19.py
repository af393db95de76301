"""Reader for a comma2k19 segment (processed_log/ and global_pose/ NumPy arrays) → SensorMessages.

What the arrays are (comma2k19 README, checked against the values of the recorded segment):

* every ``processed_log/*/t`` is the device's boot time in s; ``value`` is the sample.
* ``IMU/accelerometer`` (m/s², specific force) and ``IMU/gyro`` (rad/s, bias-corrected) are in
  the device frame [forward, right, down] and share one time base (~104 Hz). Published as
  ``imu_v1`` in our x forward, y left, z up frame: (f, -r, -d), so a level device reads z ≈ +9.8.
* ``CAN/speed`` (m/s, ~89 Hz, the mean of the four wheel speeds) and ``CAN/steering_angle``
  (steering-wheel angle, deg, positive to the left) on their own time bases.
* ``GNSS/live_gnss_ublox`` rows are [lat (deg), lon (deg), speed (m/s), UTC fix time (ms),
  height above the WGS-84 ellipsoid (m), bearing (deg from north)]. The README says the time is
  in s; the values (1.53e12) are ms. The log time ``t`` trails the fix time by ~0.2 s.
* ``global_pose/frame_*`` (20 Hz, one per video frame): ECEF position (m) and velocity (m/s) of
  the camera, and the Hamilton quaternion (w, x, y, z) rotating camera [forward, right, down]
  vectors into ECEF; ``frame_gps_times`` holds (GPS week, time of week s) of each frame.
  Published twice: planar, inside ``vehicle_state_v1`` (x, y, yaw at the CAN times), and as the
  full 6-DoF ``pose_v1`` stream at its own 20 Hz (:func:`pose_track`): position and orientation of
  the device in the same local ENU frame, its [forward, right, down] axes turned into our x
  forward, y left, z up. The segment has no device-to-vehicle extrinsic, so the device frame is
  the vehicle frame here, as it already is for the IMU and the yaw.

The vehicle clock: boot time + a constant offset to Unix time, taken from the frames' GPS times
(GPS − 18 leap seconds, valid for recordings from 2017 on). The u-blox UTC column agrees with it
to within the fix latency, which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.messages import SensorMessage
from shared.payloads import POSE_ENCODING, POSE_TOPIC, GnssFix, ImuSample, VehiclePose, VehicleState, encode_small
from vehicle.errors import VehicleError
from vehicle.replay.geodesy import Array, EnuFrame, forward_yaw_enu, matrix_to_quaternion, quaternion_to_matrix
from vehicle.replay.smoothing import local_linear_fit

NS = 1_000_000_000
#: Device [forward, right, down] axes → our [forward, left, up]: a half turn about forward.
FRD_TO_FLU = np.diag([1.0, -1.0, -1.0])
GPS_EPOCH_UNIX_S = 315_964_800  # 1980-01-06T00:00:00Z
GPS_UTC_LEAP_S = 18  # GPS − UTC since 2017-01-01
#: Half-width (s) of the centred local-linear fit that turns CAN speed into acceleration.
ACCEL_HALF_WINDOW_S = 0.5


class ReplaySourceError(VehicleError):
    """A recording cannot be read: a missing array, a wrong shape, or times that go backwards."""

    reason = "replay_source"


@dataclass(frozen=True)
class Comma2k19Segment:
    """The arrays of one segment; every ``*_t_s`` is boot time in s, shapes as in the module doc."""

    path: Path
    imu_t_s: Array
    accel_frd_mps2: Array
    gyro_frd_radps: Array
    speed_t_s: Array
    speed_mps: Array
    steer_t_s: Array
    steering_deg: Array
    gnss_t_s: Array
    gnss_ublox: Array
    frame_t_s: Array
    frame_gps_week_tow: Array
    frame_ecef_m: Array
    frame_quat_wxyz: Array

    @property
    def boot_to_unix_ns(self) -> int:
        """Add to a boot time (ns) to get Unix time (ns): median over the frames' GPS times."""
        week, tow = self.frame_gps_week_tow[:, 0], self.frame_gps_week_tow[:, 1]
        unix_s = GPS_EPOCH_UNIX_S + week * 604_800.0 + tow - GPS_UTC_LEAP_S
        return round(float(np.median(unix_s - self.frame_t_s)) * NS)

    def vehicle_ns(self, t_s: Array) -> list[int]:
        """Boot times (s) → integer ns on the epoch-like vehicle clock (no float rounding at 1e18)."""
        offset = self.boot_to_unix_ns
        return [offset + int(v) for v in np.round(t_s * NS).astype(np.int64)]


def _load(root: Path, rel: str, shape: tuple[int | None, ...]) -> Array:
    path = root / rel
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ReplaySourceError(f"comma2k19 segment {root}: cannot read {rel}: {exc}") from exc
    if shape == (None,) and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # CAN/speed is stored as (N, 1)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
        raise ReplaySourceError(f"comma2k19 segment {root}: {rel} has shape {arr.shape}, expected {shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ReplaySourceError(f"comma2k19 segment {root}: {rel} is {arr.dtype}, expected numbers")
    return np.asarray(arr, dtype=np.float64)


def _times(root: Path, rel: str, n: int) -> Array:
    t = _load(root, rel, (None,))
    if len(t) != n:
        raise ReplaySourceError(f"comma2k19 segment {root}: {rel} has {len(t)} times for {n} values")
    if n == 0 or not np.all(np.diff(t) > 0):
        raise ReplaySourceError(f"comma2k19 segment {root}: {rel} is empty or not strictly increasing")
    return t


def load_segment(path: Path) -> Comma2k19Segment:
    """Read the arrays of the segment directory ``path``; raises :class:`ReplaySourceError`."""
    if not (path / "processed_log").is_dir() or not (path / "global_pose").is_dir():
        raise ReplaySourceError(f"{path} is not a comma2k19 segment (needs processed_log/ and global_pose/)")
    log, pose = "processed_log/", "global_pose/"
    accel = _load(path, log + "IMU/accelerometer/value", (None, 3))
    gyro = _load(path, log + "IMU/gyro/value", (None, 3))
    if len(gyro) != len(accel):
        raise ReplaySourceError(f"comma2k19 segment {path}: {len(accel)} accelerometer vs {len(gyro)} gyro rows")
    speed = _load(path, log + "CAN/speed/value", (None,))
    steer = _load(path, log + "CAN/steering_angle/value", (None,))
    gnss = _load(path, log + "GNSS/live_gnss_ublox/value", (None, 6))
    ecef = _load(path, pose + "frame_positions", (None, 3))
    n_frames = len(ecef)
    return Comma2k19Segment(
        path=path,
        imu_t_s=_times(path, log + "IMU/accelerometer/t", len(accel)), accel_frd_mps2=accel, gyro_frd_radps=gyro,
        speed_t_s=_times(path, log + "CAN/speed/t", len(speed)), speed_mps=speed,
        steer_t_s=_times(path, log + "CAN/steering_angle/t", len(steer)), steering_deg=steer,
        gnss_t_s=_times(path, log + "GNSS/live_gnss_ublox/t", len(gnss)), gnss_ublox=gnss,
        frame_t_s=_times(path, pose + "frame_times", n_frames),
        frame_gps_week_tow=_load(path, pose + "frame_gps_times", (n_frames, 2)),
        frame_ecef_m=ecef, frame_quat_wxyz=_load(path, pose + "frame_orientations", (n_frames, 4)),
    )


@dataclass(frozen=True)
class StateTrack:
    """Vehicle states at the CAN speed times; arrays of shape (N,), units in the names.

    ``accel_mps2`` is the slope of a least-squares line through the CAN speed over a centred
    ±``ACCEL_HALF_WINDOW_S`` window (a first-order Savitzky-Golay filter on irregular times):
    zero phase, so a deceleration peak is not delayed, and it averages out the ±0.2 m/s
    sample-to-sample wheel-speed noise that a plain difference over 11 ms would turn into
    ±20 m/s² spikes. ``lat_accel_mps2`` is speed × yaw rate (gyro about up, same filter).
    """

    t_s: Array
    x_m: Array
    y_m: Array
    yaw_rad: Array
    speed_mps: Array
    accel_mps2: Array
    lat_accel_mps2: Array
    steering_rad: Array


def state_track(seg: Comma2k19Segment) -> StateTrack:
    """Derive the vehicle-state track (pose in ENU anchored at the first frame's position)."""
    t = seg.speed_t_s
    _, accel = local_linear_fit(t, seg.speed_mps, ACCEL_HALF_WINDOW_S)
    yaw_rate, _ = local_linear_fit(seg.imu_t_s, -seg.gyro_frd_radps[:, 2], ACCEL_HALF_WINDOW_S)
    frame = EnuFrame(seg.frame_ecef_m[0])
    enu = frame.positions(seg.frame_ecef_m)
    yaw = np.unwrap(forward_yaw_enu(frame, quaternion_to_matrix(seg.frame_quat_wxyz)))
    yaw_t = np.interp(t, seg.frame_t_s, yaw)
    return StateTrack(
        t_s=t, x_m=np.interp(t, seg.frame_t_s, enu[:, 0]), y_m=np.interp(t, seg.frame_t_s, enu[:, 1]),
        yaw_rad=np.angle(np.exp(1j * yaw_t)), speed_mps=seg.speed_mps, accel_mps2=accel,
        lat_accel_mps2=seg.speed_mps * np.interp(t, seg.imu_t_s, yaw_rate),
        steering_rad=np.radians(np.interp(t, seg.steer_t_s, seg.steering_deg)),
    )


@dataclass(frozen=True)
class PoseTrack:
    """The 6-DoF global pose in the local ENU frame of :func:`state_track` (origin: the first
    frame's position): ``t_s (N,)`` boot time, ``position_m (N, 3)`` ENU, ``rotation_wxyz (N, 4)``
    rotating x forward, y left, z up vectors into ENU."""

    t_s: Array
    position_m: Array
    rotation_wxyz: Array


def pose_track(seg: Comma2k19Segment) -> PoseTrack:
    """The global pose frames as ENU positions and vehicle-to-ENU quaternions (one per frame)."""
    frame = EnuFrame(seg.frame_ecef_m[0])
    enu_R_flu = frame.rotation @ quaternion_to_matrix(seg.frame_quat_wxyz) @ FRD_TO_FLU
    return PoseTrack(seg.frame_t_s, frame.positions(seg.frame_ecef_m), matrix_to_quaternion(enu_R_flu))


def segment_messages(seg: Comma2k19Segment, sensor_prefix: str = "comma2k19") -> list[SensorMessage]:
    """Every IMU, vehicle-state, pose and GNSS sample as a SensorMessage, sorted by sensor time.

    ``seq`` counts per topic from 0; ``t_recv_ns`` is 0 (the receiver stamps it).
    """
    msgs: list[SensorMessage] = []
    a, g = seg.accel_frd_mps2, seg.gyro_frd_radps
    for k, t_ns in enumerate(seg.vehicle_ns(seg.imu_t_s)):
        sample = ImuSample((float(a[k, 0]), float(-a[k, 1]), float(-a[k, 2])),
                           (float(g[k, 0]), float(-g[k, 1]), float(-g[k, 2])))
        msgs.append(SensorMessage("imu", f"{sensor_prefix}/imu", t_ns, 0, k, "imu_v1", encode_small(sample)))
    s = state_track(seg)
    for k, t_ns in enumerate(seg.vehicle_ns(s.t_s)):
        state = VehicleState(
            x_m=float(s.x_m[k]), y_m=float(s.y_m[k]), yaw_rad=float(s.yaw_rad[k]), speed_mps=float(s.speed_mps[k]),
            accel_mps2=float(s.accel_mps2[k]), lat_accel_mps2=float(s.lat_accel_mps2[k]),
            steering_rad=float(s.steering_rad[k]), autonomy_engaged=False)
        msgs.append(SensorMessage("vehicle_state", f"{sensor_prefix}/can", t_ns, 0, k, "vehicle_state_v1",
                                  encode_small(state)))
    p = pose_track(seg)
    for k, t_ns in enumerate(seg.vehicle_ns(p.t_s)):
        pose = VehiclePose(position_m=(float(p.position_m[k, 0]), float(p.position_m[k, 1]), float(p.position_m[k, 2])),
                           rotation_wxyz=(float(p.rotation_wxyz[k, 0]), float(p.rotation_wxyz[k, 1]),
                                          float(p.rotation_wxyz[k, 2]), float(p.rotation_wxyz[k, 3])))
        msgs.append(SensorMessage(POSE_TOPIC, f"{sensor_prefix}/pose", t_ns, 0, k, POSE_ENCODING, encode_small(pose)))
    u = seg.gnss_ublox
    for k, t_ns in enumerate(seg.vehicle_ns(seg.gnss_t_s)):
        # The processed log keeps no fix type or accuracy estimate: a 3-D single fix is the only
        # kind it contains, and the accuracy is published as NaN ("not reported"), never invented.
        fix = GnssFix(lat_deg=float(u[k, 0]), lon_deg=float(u[k, 1]), alt_m=float(u[k, 4]), fix_type=1,
                      h_accuracy_m=float("nan"))
        msgs.append(SensorMessage("gnss", f"{sensor_prefix}/ublox", t_ns, 0, k, "gnss_v1", encode_small(fix)))
    msgs.sort(key=lambda m: (m.t_sensor_ns, m.topic))
    return msgs
