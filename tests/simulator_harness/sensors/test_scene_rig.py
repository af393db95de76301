"""Synthetic sensors on a closed-loop rollout: LiDAR ranges, radar Doppler, camera, real ZeroMQ."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import zmq

from shared.messages import SensorMessage, from_frames
from shared.payloads import RADAR_DTYPE, VehicleState, decode_points, decode_small
from simulator_harness.publisher import PublishConfig, Publisher
from simulator_harness.scenario import Actor, ActorKind, EgoSpec, Event, EventKind, Intent, RoadSpec, ScenarioSpec
from simulator_harness.sensors.camera import i420_to_rgb
from simulator_harness.sensors.lidar import LidarModel
from simulator_harness.sensors.scene import Bodies, BodyLidar, Mount
from simulator_harness.sensors.scene_rig import (
    SceneCamera,
    SceneLidar,
    SceneRadar,
    agent_bodies,
    ego_pose,
    ego_velocity,
    rollout_track,
    scene_rig,
)
from simulator_harness.trajectory import Trajectory

CUT_IN = ScenarioSpec(
    "cut_in", road=RoadSpec(lanes=3), ego=EgoSpec(0, 50.0, 20.0, 20.0),
    actors=(Actor("cutter", ActorKind.CAR, 1, 72.0, 18.0, Intent.KEEP_LANE, desired_speed_mps=18.0),),
    events=(Event(EventKind.CUT_IN, "cutter", 0.5),), duration_s=4.0)
BRAKE = ScenarioSpec(
    "lead_brake", road=RoadSpec(lanes=2), ego=EgoSpec(0, 50.0, 20.0, 20.0),
    actors=(Actor("lead", ActorKind.CAR, 0, 85.0, 20.0, Intent.KEEP_LANE, desired_speed_mps=20.0),),
    events=(Event(EventKind.LEAD_HARD_BRAKE, "lead", 1.0, {"decel_mps2": 7.0}),), duration_s=4.0)


@pytest.fixture(scope="module")
def cut_in() -> Trajectory:
    return rollout_track(CUT_IN)


def test_lidar_hits_the_cutting_in_agent_at_the_simulated_range(cut_in: Trajectory) -> None:
    rig = scene_rig(cut_in, CUT_IN.road, seed=1, width_px=160, height_px=96)
    lidar = next(s for s in rig if isinstance(s, SceneLidar))
    before, after = lidar.points(5), lidar.points(30)  # t = 0.5 s (next lane), t = 3.0 s (cut in)
    ex, ey, _ = ego_pose(cut_in, 3.0)
    body = agent_bodies(cut_in, 3.0)
    rear_m = float(body.x_m[0] - body.length_m[0] / 2 - ex)
    assert abs(float(body.y_m[0] - ey)) < 0.6  # the simulator has it in the ego lane by then

    def ahead(pts: np.ndarray) -> np.ndarray:
        keep = (pts["x"] > 0) & (np.abs(pts["y"]) < 0.4) & (pts["z"] > -1.5)
        return np.asarray(pts[keep])

    assert ahead(before).size == 0  # still in the next lane: nothing in the ego's path
    hits = ahead(after)
    assert hits.size >= 3
    assert float(hits["x"].min()) == pytest.approx(rear_m, abs=0.15)
    assert float(np.median(hits["intensity"])) > 40.0  # body returns, not ground
    np.testing.assert_array_equal(lidar.points(30), after)  # deterministic per seed and tick


def test_radar_doppler_of_a_braking_lead_is_its_closing_speed() -> None:
    track = rollout_track(BRAKE)
    radar = next(s for s in scene_rig(track, BRAKE.road, seed=2, width_px=160, height_px=96)
                 if isinstance(s, SceneRadar))
    t_idx = 50  # t = 2.5 s at 20 Hz: the lead has been braking for 1.5 s
    ret = radar.returns(t_idx)
    assert ret.dtype == RADAR_DTYPE and ret.size == 1
    lead = agent_bodies(track, 2.5)
    closing = float(lead.vx_mps[0] - ego_velocity(track, 2.5)[0])
    assert closing < -2.0
    assert float(ret["doppler_mps"][0]) == pytest.approx(closing, abs=0.3)
    ex = ego_pose(track, 2.5)[0]
    assert float(ret["range_m"][0]) == pytest.approx(lead.x_m[0] - 2.3 - (ex + 3.7), abs=0.5)
    assert float(radar.returns(0)["doppler_mps"][0]) == pytest.approx(0.0, abs=0.3)  # same speeds at t = 0


def test_oriented_box_and_mount_geometry() -> None:
    # A 4 m x 2 m box turned 90 degrees, 20 m ahead: rays meet its long side 1 m before its centre.
    crossing = Bodies(np.array([20.0]), np.array([0.0]), np.array([0.9]), np.array([np.pi / 2]), np.array([4.0]),
                      np.array([2.0]), np.array([1.8]), np.zeros(1), np.zeros(1), np.zeros(1),
                      np.zeros(1, dtype=bool), ("lead_vehicle",))
    model = LidarModel(range_noise_m=0.0)

    def body_hits(mount: Mount) -> np.ndarray:
        pts = BodyLidar(model, mount).sweep(0.0, 0.0, 0.0, crossing, np.random.default_rng(0))
        return np.asarray(pts[(np.abs(pts["y"]) < 0.3) & (pts["z"] > -0.9)])

    ahead = body_hits(Mount(x_m=2.0, z_m=1.0))
    assert float(ahead["x"].min()) == pytest.approx(17.0, abs=0.01) and (ahead["x"] > 0).all()
    behind = body_hits(Mount(z_m=1.0, yaw_rad=np.pi))  # the same sensor turned round: the box is at its -x
    assert float(behind["x"].max()) == pytest.approx(-19.0, abs=0.01) and (behind["x"] < 0).all()
    aligned = Bodies(**{**crossing.__dict__, "yaw_rad": np.zeros(1)})  # now the 4 m side runs along x
    pts = BodyLidar(model, Mount(z_m=1.0)).sweep(0.0, 0.0, 0.0, aligned, np.random.default_rng(0))
    face = pts[(np.abs(pts["y"]) < 0.3) & (pts["z"] > -0.9)]
    assert float(face["x"].min()) == pytest.approx(18.0, abs=0.01)


def test_camera_sees_the_agent_and_encodes_h265(cut_in: Trajectory) -> None:
    cam = next(s for s in scene_rig(cut_in, CUT_IN.road, width_px=320, height_px=192) if isinstance(s, SceneCamera))
    k = 90  # t = 3.0 s at 30 fps
    rgb = i420_to_rgb(cam.render(k), 320, 192)
    x, _, _ = ego_pose(cut_in, 3.0)
    fwd = float(agent_bodies(cut_in, 3.0).x_m[0] - 2.3 - (x + 1.5))
    m = cam.renderer.model
    row = round(m.cy + m.fx * (1.4 - 0.75) / fwd)
    r, g, b = (int(c) for c in rgb[row, 160])
    assert b > r + 40 and b > g  # the car's blue rear face straight ahead
    units = [au for i in range(3) for au in cam.capture(i)]
    decoder = av.CodecContext.create("hevc", "r")
    frames = [f for au in units for p in decoder.parse(au.payload) for f in decoder.decode(p)]
    assert units[0].keyframe and frames and frames[0].width == 320


def test_scene_rig_publishes_over_a_real_sub_socket() -> None:
    track = rollout_track(BRAKE)
    short = track.steps(slice(0, 11))  # first second only
    sensors = scene_rig(short, BRAKE.road, seed=3, width_px=160, height_px=96)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    with Publisher(sensors, PublishConfig("tcp://127.0.0.1:*", 1.0, wait_subscriber_s=5.0, linger_s=2.0),
                   ctx) as pub:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(pub.endpoint)
        runner = threading.Thread(target=pub.run)
        runner.start()
        got: dict[str, list[SensorMessage]] = {}
        try:
            while sub.poll(500) or runner.is_alive():
                if not sub.poll(0):
                    continue
                msg = from_frames(sub.recv_multipart(copy=True))
                got.setdefault(msg.topic, []).append(msg)
        finally:
            runner.join(10)
            sub.close(0)
    assert set(got) == {"camera/front", "lidar/top", "radar/front", "imu", "gnss", "vehicle_state"}
    assert len(got["imu"]) == 200 and len(got["radar/front"]) == 20 and len(got["camera/front"]) == 30
    state = decode_small(got["vehicle_state"][-1].payload, VehicleState)
    assert state.speed_mps == pytest.approx(float(np.interp(0.98, track.t_s, track.speed_mps[0])), abs=0.3)
    radar = decode_points(got["radar/front"][10].payload, RADAR_DTYPE)
    assert radar.size == 1 and radar["range_m"][0] > 20.0
