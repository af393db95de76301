"""Synthetic sensors on a closed-loop rollout: what the ego would have seen and felt in a scenario.

:class:`SceneTrack` holds one scenario of a :class:`~simulator_harness.closed_loop.Trajectory` and
interpolates it (10 Hz) to any sensor instant: the ego pose and velocity, the other agents as
oriented :class:`~simulator_harness.sensors.scene.Bodies`, and the ego kinematics as an
:class:`~simulator_harness.drive.EgoTrajectory` for the IMU, GNSS and vehicle-state models.
:func:`scene_rig` adapts it to the publisher's ``Sensor`` protocol: the front camera (the demo's
renderer with the scenario's lane lines, real H.265), a roof LiDAR and a front radar ray-cast
against the agents' oriented boxes, and the motion sensors. Everything but the H.265 bytes is
deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, encode_points, encode_small
from simulator_harness.closed_loop import DT_S, EGO, KIND_CODE, EgoPolicy, IDMEgo, Trajectory, simulate
from simulator_harness.drive import EgoTrajectory
from simulator_harness.scenario.spec import ActorKind, RoadSpec, ScenarioSpec
from simulator_harness.sensors.base import Capture, Sensor, SensorSpec, sample_rng
from simulator_harness.sensors.camera import CameraModel, CameraRenderer
from simulator_harness.sensors.encoder import H265Encoder
from simulator_harness.sensors.lidar import LidarModel
from simulator_harness.sensors.motion import GnssModel, ImuModel, gnss_readings, imu_readings, vehicle_state_readings
from simulator_harness.sensors.radar import RadarModel, radar_returns
from simulator_harness.sensors.rig import CAMERA_SPEC, GNSS_SPEC, IMU_SPEC, LIDAR_SPEC, VEHICLE_STATE_SPEC, frame_count
from simulator_harness.sensors.scene import Bodies, BodyLidar, Mount

F64 = npt.NDArray[np.float64]
RADAR_SPEC = SensorSpec("radar/front", "radar_front", "radar_v1", 20.0)
_CODE_KIND = {code: kind for kind, code in KIND_CODE.items()}
_HEIGHT_M = {ActorKind.CAR: 1.5, ActorKind.TRUCK: 3.5, ActorKind.PEDESTRIAN: 1.8, ActorKind.CYCLIST: 1.7}
_RCS_DBSM = {ActorKind.CAR: 10.0, ActorKind.TRUCK: 20.0, ActorKind.PEDESTRIAN: -5.0, ActorKind.CYCLIST: 0.0}
_CAMERA_KIND = {ActorKind.CAR: "lead_vehicle", ActorKind.TRUCK: "other", ActorKind.PEDESTRIAN: "post",
                ActorKind.CYCLIST: "other"}
_LIDAR_STREAM, _RADAR_STREAM, _IMU_STREAM, _GNSS_STREAM = 11, 12, 13, 14
_WHEELBASE_M, _STEERING_RATIO = 2.8, 15.0


@dataclass(frozen=True, eq=False)
class SceneTrack:
    """Scenario ``index`` of a rollout: arrays ``(A, T)`` (agent 0 the ego) on the 10 Hz grid ``t_s``,
    velocities by finite differences of the positions, and the road it ran on."""

    road: RoadSpec
    t_s: F64
    x_m: F64
    y_m: F64
    yaw_rad: F64
    v_mps: F64
    a_mps2: F64
    vx_mps: F64
    vy_mps: F64
    valid: npt.NDArray[np.bool_]
    kinds: tuple[ActorKind, ...]
    length_m: F64
    width_m: F64

    @staticmethod
    def from_rollout(traj: Trajectory, index: int, road: RoadSpec) -> SceneTrack:
        """Take scenario ``index`` out of ``traj``."""
        x, y = traj.x_m[index], traj.y_m[index]
        return SceneTrack(road, traj.t_s, x, y, np.unwrap(traj.yaw_rad[index], axis=1), traj.v_mps[index],
                          traj.a_mps2[index], np.gradient(x, DT_S, axis=1), np.gradient(y, DT_S, axis=1),
                          traj.valid[index], tuple(_CODE_KIND[int(k)] for k in traj.kind[index]),
                          traj.length_m[index], traj.width_m[index])

    @property
    def duration_s(self) -> float:
        """Time covered by the rollout, s."""
        return float(self.t_s[-1] - self.t_s[0])

    def _at(self, arr: F64, t_s: F64 | float) -> F64:
        """Linear interpolation of ``arr`` (A, T) at ``t_s`` (clamped to the rollout): (A, n) or (A,)."""
        k = np.clip((np.asarray(t_s, dtype=np.float64) - self.t_s[0]) / DT_S, 0.0, self.t_s.size - 1)
        i0 = np.minimum(np.floor(k).astype(np.int64), self.t_s.size - 1)
        i1 = np.minimum(i0 + 1, self.t_s.size - 1)
        f = k - i0
        return np.asarray(arr[:, i0] * (1.0 - f) + arr[:, i1] * f)

    def ego_pose(self, t_s: float) -> tuple[float, float, float]:
        """Ego ``(x_m, y_m, yaw_rad)`` at ``t_s``."""
        return (float(self._at(self.x_m, t_s)[EGO]), float(self._at(self.y_m, t_s)[EGO]),
                float(self._at(self.yaw_rad, t_s)[EGO]))

    def ego_velocity(self, t_s: float) -> tuple[float, float]:
        """Ego world velocity ``(vx, vy)`` in m/s at ``t_s``."""
        return float(self._at(self.vx_mps, t_s)[EGO]), float(self._at(self.vy_mps, t_s)[EGO])

    def bodies(self, t_s: float) -> Bodies:
        """Every other agent present at ``t_s`` (valid on the nearest recorded step)."""
        k = int(np.clip(round((t_s - self.t_s[0]) / DT_S), 0, self.t_s.size - 1))
        idx = np.flatnonzero(self.valid[:, k])
        idx = idx[idx != EGO]
        kinds = [self.kinds[i] for i in idx.tolist()]
        height = np.array([_HEIGHT_M[k] for k in kinds])
        return Bodies(
            self._at(self.x_m, t_s)[idx], self._at(self.y_m, t_s)[idx], height / 2.0,
            self._at(self.yaw_rad, t_s)[idx], self.length_m[idx], self.width_m[idx], height,
            self._at(self.vx_mps, t_s)[idx], self._at(self.vy_mps, t_s)[idx],
            np.array([_RCS_DBSM[k] for k in kinds]), self._at(self.a_mps2, t_s)[idx] < -0.5,
            tuple(_CAMERA_KIND[k] for k in kinds))

    def ego_trajectory(self, t_s: F64) -> EgoTrajectory:
        """Ego kinematics at the times ``t_s`` (n,), for the IMU/GNSS/vehicle-state models."""
        t = np.asarray(t_s, dtype=np.float64)
        yaw_rate = self._at(np.gradient(self.yaw_rad, DT_S, axis=1), t)[EGO]
        v = self._at(self.v_mps, t)[EGO]
        curvature = yaw_rate / np.maximum(v, 1.0)
        return EgoTrajectory(t_s=t, x_m=self._at(self.x_m, t)[EGO], y_m=self._at(self.y_m, t)[EGO],
                             yaw_rad=self._at(self.yaw_rad, t)[EGO], speed_mps=v,
                             accel_mps2=self._at(self.a_mps2, t)[EGO], lat_accel_mps2=v * yaw_rate,
                             yaw_rate_radps=yaw_rate,
                             steering_rad=_STEERING_RATIO * np.arctan(_WHEELBASE_M * curvature),
                             autonomy_engaged=np.ones(t.size, dtype=bool))

    def lane_lines(self) -> tuple[tuple[tuple[float, bool], ...], tuple[float, float]]:
        """Painted lines ``(y_m, dashed)`` of the main road and its paved edges, for the camera."""
        w, n = self.road.lane_width_m, self.road.lanes
        lines = tuple(((i - 0.5) * w, 0 < i < n) for i in range(n + 1))
        return lines, (-0.5 * w - 0.6, (n - 0.5) * w + 0.6)


def rollout_track(spec: ScenarioSpec, policy: EgoPolicy | None = None) -> SceneTrack:
    """Simulate ``spec`` closed-loop (default ego :class:`IDMEgo`) and return its track."""
    traj, _ = simulate([spec], policy or IDMEgo())
    return SceneTrack.from_rollout(traj, 0, spec.road)


class SceneCamera:
    """The scenario seen by a camera on a :class:`Mount`, rendered and encoded to H.265."""

    def __init__(self, track: SceneTrack, model: CameraModel, spec: SensorSpec, mount: Mount | None = None,
                 keyint: int = 30) -> None:
        self.spec, self.track, self.mount = spec, track, mount or Mount()
        lines, edges = track.lane_lines()
        self.renderer = CameraRenderer(model, lines, edges)
        self.encoder = H265Encoder(model.width_px, model.height_px, fps=round(spec.rate_hz), keyint=keyint)

    def render(self, index: int) -> npt.NDArray[np.uint8]:
        """The I420 frame of tick ``index``."""
        t = index / self.spec.rate_hz
        x, y, yaw = self.mount.world_pose(*self.track.ego_pose(t))
        return self.renderer.render(x, y, yaw, self.track.bodies(t).to_boxes())

    def capture(self, index: int) -> list[Capture]:
        """Render and encode tick ``index``."""
        return [Capture(au.payload, au.keyframe) for au in self.encoder.encode(self.render(index))]


class SceneLidar:
    """A :class:`BodyLidar` sweep of the agents per tick, ``lidar_points_v1``."""

    def __init__(self, track: SceneTrack, lidar: BodyLidar, spec: SensorSpec, seed: int) -> None:
        self.spec, self.track, self.lidar, self.seed = spec, track, lidar, seed

    def points(self, index: int) -> npt.NDArray[np.void]:
        """The sweep of tick ``index`` as ``LIDAR_DTYPE``."""
        t = index / self.spec.rate_hz
        return self.lidar.sweep(*self.track.ego_pose(t), self.track.bodies(t),
                                sample_rng(self.seed, _LIDAR_STREAM, index))

    def capture(self, index: int) -> list[Capture]:
        """One sweep."""
        return [Capture(encode_points(self.points(index), LIDAR_DTYPE))]


class SceneRadar:
    """Radar returns with Doppler per tick, ``radar_v1``."""

    def __init__(self, track: SceneTrack, model: RadarModel, mount: Mount, spec: SensorSpec, seed: int) -> None:
        self.spec, self.track, self.model, self.mount, self.seed = spec, track, model, mount, seed

    def returns(self, index: int) -> npt.NDArray[np.void]:
        """The returns of tick ``index`` as ``RADAR_DTYPE``."""
        t = index / self.spec.rate_hz
        return radar_returns(self.model, self.mount, *self.track.ego_pose(t), *self.track.ego_velocity(t),
                             self.track.bodies(t), sample_rng(self.seed, _RADAR_STREAM, index))

    def capture(self, index: int) -> list[Capture]:
        """One scan."""
        return [Capture(encode_points(self.returns(index), RADAR_DTYPE))]


class Precomputed:
    """A cheap sensor whose every payload was encoded up front (IMU, GNSS, vehicle state)."""

    def __init__(self, spec: SensorSpec, payloads: Sequence[bytes]) -> None:
        self.spec, self.payloads = spec, list(payloads)

    def capture(self, index: int) -> list[Capture]:
        """The ``index``-th payload (the last one past the end)."""
        return [Capture(self.payloads[min(index, len(self.payloads) - 1)])]


def scene_rig(track: SceneTrack, seed: int = 0, width_px: int = 640, height_px: int = 360) -> list[Sensor]:
    """Front camera, roof LiDAR, front radar, IMU, GNSS and vehicle state on ``track``, on the demo
    rig's topics (plus ``radar/front``), for the publisher."""
    def ticks(spec: SensorSpec) -> F64:
        return np.arange(max(frame_count(spec.rate_hz, track.duration_s), 1)) / spec.rate_hz

    imu = imu_readings(track.ego_trajectory(ticks(IMU_SPEC)), ImuModel(), sample_rng(seed, _IMU_STREAM, 0))
    gnss = gnss_readings(track.ego_trajectory(ticks(GNSS_SPEC)), GnssModel(), sample_rng(seed, _GNSS_STREAM, 0))
    states = vehicle_state_readings(track.ego_trajectory(ticks(VEHICLE_STATE_SPEC)))
    lidar_model = LidarModel()
    return [
        SceneCamera(track, CameraModel(width_px=width_px, height_px=height_px), CAMERA_SPEC, Mount(1.5, 0.0, 1.4)),
        SceneLidar(track, BodyLidar(lidar_model, Mount(z_m=lidar_model.mount_z_m)), LIDAR_SPEC, seed),
        SceneRadar(track, RadarModel(fov_deg=60.0, max_range_m=200.0), Mount(3.7, 0.0, 0.5), RADAR_SPEC, seed),
        Precomputed(IMU_SPEC, [encode_small(r) for r in imu]),
        Precomputed(GNSS_SPEC, [encode_small(r) for r in gnss]),
        Precomputed(VEHICLE_STATE_SPEC, [encode_small(r) for r in states]),
    ]

