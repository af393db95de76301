"""The whole loop, as `make demo` runs it: simulator → vehicle → cloud, real processes and sockets.

Asserts the content, not just that something arrived: per-sensor message counts in the segment equal
what the simulator published inside the trigger window, every camera frame decodes with PyAV, and the
sha256 the cloud stored equals the one the vehicle computed when it wrote the snapshot.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import pytest

from hil.demo import DemoConfig, DemoResult, run_demo, tool
from shared.snapshot import SnapshotReader, sha256_file
from tests.hil.expect import expected_counts as _expected_counts
from tests.hil.expect import published as _published

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(DemoConfig(workdir=tmp_path_factory.mktemp("demo")))


def test_one_segment_with_the_hard_brake(demo: DemoResult) -> None:
    assert len(demo.segments) == 1
    seg = demo.segments[0]
    assert seg["vehicle_id"] == "demo-car"
    assert [t["kind"] for t in seg["triggers"]] == ["hard_brake"]
    assert seg["source"] == "REAL"
    # The trigger fires within the simulated brake (at 10 s of a drive that started after the vehicle subscribed).
    published = _published(demo)
    t0 = min(int(p["t_sensor_ns"]) for p in published)
    fired_s = (seg["triggers"][0]["t_ns"] - t0) / 1e9
    assert 10.0 <= fired_s <= 11.0, fired_s


def test_counts_per_sensor_equal_what_was_published_in_the_window(demo: DemoResult) -> None:
    seg = demo.segments[0]
    trig = seg["triggers"][0]
    expected = _expected_counts(_published(demo), trig["start_ns"], trig["end_ns"])
    got = {s["topic"]: s["count"] for s in seg["streams"]}
    assert set(got) >= {"camera/front", "lidar/top", "imu", "vehicle_state"}
    assert got == dict(expected)
    # At the demo's rates, a 12 s window holds about 12 s of each sensor.
    assert 0.9 * 12 * 200 <= got["imu"] <= 1.1 * 12 * 200
    assert 0.9 * 12 * 30 <= got["camera/front"] <= 1.1 * 13 * 30


def _raw_file(demo: DemoResult) -> Path:
    key = demo.segments[0]["raw_key"]
    path = demo.cloud_dir / "store" / key
    assert path.is_file(), path
    return Path(path)


def test_every_camera_frame_in_the_segment_decodes(demo: DemoResult) -> None:
    seg = demo.segments[0]
    want = next(s["count"] for s in seg["streams"] if s["topic"] == "camera/front")
    codec = av.CodecContext.create("hevc", "r")
    decoded = 0
    with SnapshotReader(_raw_file(demo)) as reader:
        msgs = [m for _, m in reader.messages(["camera/front"])]
    assert msgs[0].keyframe, "the clip must start at a keyframe so it decodes on its own"
    for m in msgs:
        for frame in codec.decode(av.Packet(bytes(m.payload))):
            assert frame.width == 640 and frame.height == 360
            decoded += 1
    decoded += sum(1 for _ in codec.decode(None))
    assert decoded == len(msgs) == want


def test_stored_sha256_equals_the_vehicles(demo: DemoResult) -> None:
    out = subprocess.run([tool("avdata-vehicle"), "queue", "ls", "--json", "--config",
                          str(demo.workdir / "vehicle.toml")], check=True, capture_output=True, text=True).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(entries) == 1 and entries[0]["state"] == "done"
    vehicle_sha = entries[0]["sha256"]
    assert sha256_file(_raw_file(demo)) == vehicle_sha
    assert demo.segments[0]["snapshot_sha256"] == vehicle_sha


def test_the_rig_calibration_is_attached_and_the_lidar_motion_compensated(demo: DemoResult) -> None:
    """The rig imports the simulator's calibration (avdata-sim calibration → avdata-cloud calib import);
    the segment carries it and its LiDAR ref points at the calibrated sweeps in processed/."""
    import time

    seg = demo.segments[0]
    assert seg["calibration_version"] == "sim-rig-1"
    (key,) = seg["lidar_refs"]
    assert key.startswith("processed/") and key.endswith("calibrated.mcap")
    path = demo.cloud_dir / "store" / key
    deadline = time.monotonic() + 30  # written by the daemon's background worker after the ack
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with SnapshotReader(path) as reader:
        sweeps = [m for _, m in reader.messages(["lidar/top"])]
    want = next(s["count"] for s in seg["streams"] if s["topic"] == "lidar/top")
    assert len(sweeps) == want > 0


def test_services_shut_down_cleanly(demo: DemoResult) -> None:
    assert demo.exit_codes == {"sim": 0, "vehicle": 0, "cloud": 0}
