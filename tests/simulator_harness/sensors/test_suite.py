"""The full seed sensor suite published for 2 s over a real ZeroMQ SUB socket: every topic at its rate."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import zmq

from shared.messages import SensorMessage, from_frames
from shared.payloads import RADAR_DTYPE, GnssFix, VehicleState, decode_points, decode_small
from simulator_harness.drive import DriveParams
from simulator_harness.errors import SensorConfigError
from simulator_harness.publisher import PublishConfig, Publisher
from simulator_harness.sensors.suite import full_suite

DURATION_S = 2.0


@pytest.fixture(scope="module")
def received() -> dict[str, list[SensorMessage]]:
    drive = DriveParams(brake_at_s=1.0, disengage_at_s=1.5)
    sensors = full_suite(drive, seed=4, width_px=160, height_px=96, rtk_float_s=((0.5, 1.0),))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    got: dict[str, list[SensorMessage]] = {}
    with Publisher(sensors, PublishConfig("tcp://127.0.0.1:*", DURATION_S, wait_subscriber_s=5.0,
                                          linger_s=2.0), ctx) as pub:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(pub.endpoint)
        runner = threading.Thread(target=pub.run)
        runner.start()
        try:
            while runner.is_alive() or sub.poll(300):
                if sub.poll(50):
                    msg = from_frames(sub.recv_multipart())
                    got.setdefault(msg.topic, []).append(msg)
        finally:
            runner.join(10)
            sub.close(0)
    return got


RATES = {**{f"camera/{n}": 30.0 for n in ("front", "front_left", "front_right", "left", "right", "rear_left",
                                           "rear_right", "rear")},
         "lidar/top": 10.0, "lidar/front_left": 20.0, "lidar/front_right": 20.0,
         **{f"radar/{n}": 20.0 for n in ("front", "front_left", "front_right", "rear_left", "rear_right")},
         "imu": 200.0, "gnss": 10.0, "vehicle_state": 50.0}


def test_every_topic_arrives_at_its_rate(received: dict[str, list[SensorMessage]]) -> None:
    assert set(received) == set(RATES)
    for topic, rate in RATES.items():
        msgs = received[topic]
        assert abs(len(msgs) - rate * DURATION_S) <= 0.1 * rate * DURATION_S, topic
        span_s = (msgs[-1].t_sensor_ns - msgs[0].t_sensor_ns) / 1e9
        assert (len(msgs) - 1) / span_s == pytest.approx(rate, rel=0.10), topic
        assert [m.seq for m in msgs] == list(range(len(msgs))), topic  # nothing lost or reordered


def test_looped_cameras_decode_and_restart_at_a_keyframe(received: dict[str, list[SensorMessage]]) -> None:
    for topic in ("camera/front", "camera/rear"):
        msgs = received[topic]
        assert [i for i, m in enumerate(msgs) if m.keyframe] == [0, 30]  # one closed GOP per loop
        assert bytes(msgs[30].payload) == bytes(msgs[0].payload)
        decoder = av.CodecContext.create("hevc", "r")
        frames = [f for m in msgs[30:] for p in decoder.parse(bytes(m.payload)) for f in decoder.decode(p)]
        assert len(frames) >= 29 and frames[0].width == 160


def test_radar_doppler_rtk_status_and_disengagement(received: dict[str, list[SensorMessage]]) -> None:
    # The lead starts braking at 0.4 s, the ego at 1.0 s: in between the front radar sees it closing.
    scans = [decode_points(m.payload, RADAR_DTYPE) for m in received["radar/front"]]
    lead = [s[np.argmin(np.abs(s["azimuth_rad"]))] for s in scans]  # dead ahead; roadside objects are off-axis
    doppler = np.array([r["doppler_mps"] for r in lead])
    assert abs(doppler[0]) < 0.3 and doppler[19] < -2.0  # 0.0 s: same speed; 0.95 s: closing fast
    assert float(lead[0]["range_m"]) == pytest.approx(30.0 - 2.3 - 3.7, abs=0.5)
    # Static roadside objects close at the ego's own speed projected on the line of sight.
    posts = scans[0][np.abs(scans[0]["azimuth_rad"]) > 0.05]
    expected = -15.0 * np.cos(posts["azimuth_rad"])
    np.testing.assert_allclose(posts["doppler_mps"], expected, atol=0.3)
    fixes = [decode_small(m.payload, GnssFix) for m in received["gnss"]]
    assert [f.fix_type for f in fixes] == [4] * 5 + [5] * 5 + [4] * 10
    states = [decode_small(m.payload, VehicleState) for m in received["vehicle_state"]]
    assert all(s.autonomy_engaged for s in states[:75]) and not any(s.autonomy_engaged for s in states[75:])


def test_suite_size_is_checked() -> None:
    with pytest.raises(SensorConfigError, match="LiDARs"):
        full_suite(DriveParams(), n_lidars=0)
