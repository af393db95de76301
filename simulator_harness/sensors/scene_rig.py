"""Synthetic sensors on a closed-loop rollout: what the ego would have seen and felt in a scenario.

The sensors read one scenario of a rollout, a :class:`~simulator_harness.trajectory.Trajectory`
``(A, T)`` on the 10 Hz grid (agent 0 the ego), interpolated to any sensor instant: the ego pose and
velocity (:func:`ego_pose`, :func:`ego_velocity`), the other agents as oriented
:class:`~simulator_harness.sensors.scene.Bodies` (:func:`agent_bodies`), and the ego kinematics as a
one-agent trajectory with yaw rate, lateral acceleration and steering (:func:`ego_at`) for the IMU,
GNSS and vehicle-state models. Yaw is unwrapped along time before it is interpolated; velocities
are finite differences of the positions. :func:`scene_rig` adapts it to the publisher's ``Sensor``
protocol: the front camera (the demo's renderer with the scenario's lane lines, real H.265), a roof
LiDAR and a front radar ray-cast against the agents' oriented boxes, and the motion sensors.
Everything but the H.265 bytes is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, encode_points, encode_small
from simulator_harness.closed_loop import DT_S, EgoPolicy, IDMEgo, simulate
from simulator_harness.errors import TrajectoryError
from simulator_harness.scenario.spec import ActorKind, RoadSpec, ScenarioSpec
from simulator_harness.sensors.base import Capture, Sensor, SensorSpec, sample_rng
from simulator_harness.sensors.camera import CameraModel, CameraRenderer
from simulator_harness.sensors.encoder import H265Encoder
from simulator_harness.sensors.lidar import LidarModel
from simulator_harness.sensors.motion import GnssModel, ImuModel, gnss_readings, imu_readings, vehicle_state_readings
from simulator_harness.sensors.radar import RadarModel, radar_returns
from simulator_harness.sensors.rig import CAMERA_SPEC, GNSS_SPEC, IMU_SPEC, LIDAR_SPEC, VEHICLE_STATE_SPEC, frame_count
from simulator_harness.sensors.scene import Bodies, BodyLidar, Mount
from simulator_harness.trajectory import EGO, Trajectory, require, unbatched

F64 = npt.NDArray[np.float64]
RADAR_SPEC = SensorSpec("radar/front", "radar_front", "radar_v1", 20.0)
_HEIGHT_M = {ActorKind.CAR.value: 1.5, ActorKind.TRUCK.value: 3.5, ActorKind.PEDESTRIAN.value: 1.8,
             ActorKind.CYCLIST.value: 1.7}
_RCS_DBSM = {ActorKind.CAR.value: 10.0, ActorKind.TRUCK.value: 20.0, ActorKind.PEDESTRIAN.value: -5.0,
             ActorKind.CYCLIST.value: 0.0}
_CAMERA_KIND = {ActorKind.CAR.value: "lead_vehicle", ActorKind.TRUCK.value: "other",
                ActorKind.PEDESTRIAN.value: "post", ActorKind.CYCLIST.value: "other"}
_LIDAR_STREAM, _RADAR_STREAM, _IMU_STREAM, _GNSS_STREAM = 11, 12, 13, 14
_WHEELBASE_M, _STEERING_RATIO = 2.8, 15.0


def rollout_track(spec: ScenarioSpec, policy: EgoPolicy | None = None) -> Trajectory:
    """Simulate ``spec`` closed-loop (default ego :class:`IDMEgo`): its one scenario, ``(A, T)``."""
    traj, _ = simulate([spec], policy or IDMEgo())
    return traj.scenario(0)


def _at(traj: Trajectory, arr: F64, t_s: F64 | float) -> F64:
    """Linear interpolation of ``arr`` (A, T) at ``t_s`` (clamped to the rollout): (A, n) or (A,)."""
    k = np.clip((np.asarray(t_s, dtype=np.float64) - traj.t_s[0]) / DT_S, 0.0, traj.t_s.size - 1)
    i0 = np.minimum(np.floor(k).astype(np.int64), traj.t_s.size - 1)
    i1 = np.minimum(i0 + 1, traj.t_s.size - 1)
    f = k - i0
    return np.asarray(arr[:, i0] * (1.0 - f) + arr[:, i1] * f)


def _yaw(traj: Trajectory) -> F64:
    """Heading unwrapped along time, so that interpolation never passes through the wrong side."""
    return np.asarray(np.unwrap(unbatched(traj, "the scene sensors").yaw_rad, axis=1), dtype=np.float64)


def ego_pose(traj: Trajectory, t_s: float) -> tuple[float, float, float]:
    """Ego ``(x_m, y_m, yaw_rad)`` at ``t_s``."""
    return (float(_at(traj, traj.x_m, t_s)[EGO]), float(_at(traj, traj.y_m, t_s)[EGO]),
            float(_at(traj, _yaw(traj), t_s)[EGO]))


def ego_velocity(traj: Trajectory, t_s: float) -> tuple[float, float]:
    """Ego world velocity ``(vx, vy)`` in m/s at ``t_s``."""
    return (float(_at(traj, np.gradient(traj.x_m, DT_S, axis=1), t_s)[EGO]),
            float(_at(traj, np.gradient(traj.y_m, DT_S, axis=1), t_s)[EGO]))


def agent_bodies(traj: Trajectory, t_s: float) -> Bodies:
    """Every other agent present at ``t_s`` (valid on the nearest recorded step); ``traj`` needs
    ``kind`` (closed-loop kinds), ``length_m`` and ``width_m``."""
    k = int(np.clip(round((t_s - traj.t_s[0]) / DT_S), 0, traj.t_s.size - 1))
    idx = np.flatnonzero(traj.valid[:, k])
    idx = idx[idx != EGO]
    names = require(traj.kind, "kind")
    kinds = [str(names[i]) for i in idx.tolist()]
    unknown = sorted(set(kinds) - set(_HEIGHT_M))
    if unknown:
        raise TrajectoryError(f"agents of kind {unknown} have no sensor model (known: {sorted(_HEIGHT_M)})")
    height = np.array([_HEIGHT_M[k] for k in kinds])
    vx, vy = np.gradient(traj.x_m, DT_S, axis=1), np.gradient(traj.y_m, DT_S, axis=1)
    return Bodies(
        _at(traj, traj.x_m, t_s)[idx], _at(traj, traj.y_m, t_s)[idx], height / 2.0,
        _at(traj, _yaw(traj), t_s)[idx], require(traj.length_m, "length_m")[idx],
        require(traj.width_m, "width_m")[idx], height, _at(traj, vx, t_s)[idx], _at(traj, vy, t_s)[idx],
        np.array([_RCS_DBSM[k] for k in kinds]), _at(traj, traj.accel_mps2, t_s)[idx] < -0.5,
        tuple(_CAMERA_KIND[k] for k in kinds))


def ego_at(traj: Trajectory, t_s: F64) -> Trajectory:
    """The ego alone, ``(1, n)``, at the times ``t_s`` (n,), with yaw rate (finite differences on
    the 10 Hz grid), lateral acceleration and steering from it, for the IMU/GNSS/vehicle-state models."""
    t = np.asarray(t_s, dtype=np.float64)
    yaw = _yaw(traj)
    yaw_rate = _at(traj, np.gradient(yaw, DT_S, axis=1), t)[EGO]
    v = _at(traj, traj.speed_mps, t)[EGO]
    curvature = yaw_rate / np.maximum(v, 1.0)
    return Trajectory(t_s=t, x_m=_at(traj, traj.x_m, t)[EGO:EGO + 1], y_m=_at(traj, traj.y_m, t)[EGO:EGO + 1],
                      yaw_rad=_at(traj, yaw, t)[EGO:EGO + 1], speed_mps=v[None],
                      accel_mps2=_at(traj, traj.accel_mps2, t)[EGO:EGO + 1], valid=np.ones((1, t.size), dtype=bool),
                      lat_accel_mps2=(v * yaw_rate)[None], yaw_rate_radps=yaw_rate[None],
                      steering_rad=(_STEERING_RATIO * np.arctan(_WHEELBASE_M * curvature))[None],
                      autonomy_engaged=np.ones((1, t.size), dtype=bool))


def lane_lines(road: RoadSpec) -> tuple[tuple[tuple[float, bool], ...], tuple[float, float]]:
    """Painted lines ``(y_m, dashed)`` of the main road and its paved edges, for the camera."""
    w, n = road.lane_width_m, road.lanes
    lines = tuple(((i - 0.5) * w, 0 < i < n) for i in range(n + 1))
    return lines, (-0.5 * w - 0.6, (n - 0.5) * w + 0.6)


class SceneCamera:
    """The scenario (on ``road``) seen by a camera on a :class:`Mount`, rendered and encoded to H.265."""

    def __init__(self, track: Trajectory, road: RoadSpec, model: CameraModel, spec: SensorSpec,
                 mount: Mount | None = None, keyint: int = 30) -> None:
        self.spec, self.track, self.mount = spec, unbatched(track, "SceneCamera"), mount or Mount()
        lines, edges = lane_lines(road)
        self.renderer = CameraRenderer(model, lines, edges)
        self.encoder = H265Encoder(model.width_px, model.height_px, fps=round(spec.rate_hz), keyint=keyint)

    def render(self, index: int) -> npt.NDArray[np.uint8]:
        """The I420 frame of tick ``index``."""
        t = index / self.spec.rate_hz
        x, y, yaw = self.mount.world_pose(*ego_pose(self.track, t))
        return self.renderer.render(x, y, yaw, agent_bodies(self.track, t).to_boxes())

    def capture(self, index: int) -> list[Capture]:
        """Render and encode tick ``index``."""
        return [Capture(au.payload, au.keyframe) for au in self.encoder.encode(self.render(index))]


class SceneLidar:
    """A :class:`BodyLidar` sweep of the agents per tick, ``lidar_points_v1``."""

    def __init__(self, track: Trajectory, lidar: BodyLidar, spec: SensorSpec, seed: int) -> None:
        self.spec, self.track, self.lidar, self.seed = spec, unbatched(track, "SceneLidar"), lidar, seed

    def points(self, index: int) -> npt.NDArray[np.void]:
        """The sweep of tick ``index`` as ``LIDAR_DTYPE``."""
        t = index / self.spec.rate_hz
        return self.lidar.sweep(*ego_pose(self.track, t), agent_bodies(self.track, t),
                                sample_rng(self.seed, _LIDAR_STREAM, index))

    def capture(self, index: int) -> list[Capture]:
        """One sweep."""
        return [Capture(encode_points(self.points(index), LIDAR_DTYPE))]


class SceneRadar:
    """Radar returns with Doppler per tick, ``radar_v1``."""

    def __init__(self, track: Trajectory, model: RadarModel, mount: Mount, spec: SensorSpec, seed: int) -> None:
        self.spec, self.model, self.mount, self.seed = spec, model, mount, seed
        self.track = unbatched(track, "SceneRadar")

    def returns(self, index: int) -> npt.NDArray[np.void]:
        """The returns of tick ``index`` as ``RADAR_DTYPE``."""
        t = index / self.spec.rate_hz
        return radar_returns(self.model, self.mount, *ego_pose(self.track, t), *ego_velocity(self.track, t),
                             agent_bodies(self.track, t), sample_rng(self.seed, _RADAR_STREAM, index))

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


def scene_rig(track: Trajectory, road: RoadSpec, seed: int = 0, width_px: int = 640,
              height_px: int = 360) -> list[Sensor]:
    """Front camera, roof LiDAR, front radar, IMU, GNSS and vehicle state on one scenario ``track``
    ``(A, T)`` that ran on ``road``, on the demo rig's topics (plus ``radar/front``), for the publisher."""
    def ticks(spec: SensorSpec) -> F64:
        return np.arange(max(frame_count(spec.rate_hz, track.duration_s), 1)) / spec.rate_hz

    imu = imu_readings(ego_at(track, ticks(IMU_SPEC)), ImuModel(), sample_rng(seed, _IMU_STREAM, 0))
    gnss = gnss_readings(ego_at(track, ticks(GNSS_SPEC)), GnssModel(), sample_rng(seed, _GNSS_STREAM, 0))
    states = vehicle_state_readings(ego_at(track, ticks(VEHICLE_STATE_SPEC)))
    lidar_model = LidarModel()
    return [
        SceneCamera(track, road, CameraModel(width_px=width_px, height_px=height_px), CAMERA_SPEC,
                    Mount(1.5, 0.0, 1.4)),
        SceneLidar(track, BodyLidar(lidar_model, Mount(z_m=lidar_model.mount_z_m)), LIDAR_SPEC, seed),
        SceneRadar(track, RadarModel(fov_deg=60.0, max_range_m=200.0), Mount(3.7, 0.0, 0.5), RADAR_SPEC, seed),
        Precomputed(IMU_SPEC, [encode_small(r) for r in imu]),
        Precomputed(GNSS_SPEC, [encode_small(r) for r in gnss]),
        Precomputed(VEHICLE_STATE_SPEC, [encode_small(r) for r in states]),
    ]

