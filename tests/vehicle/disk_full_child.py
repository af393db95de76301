"""Child process of ``test_disk_full.py``: a recorder writing snapshots onto a disk that fills up.

``python -m tests.vehicle.disk_full_child tmpfs DIR`` mounts an 8 MiB tmpfs on ``DIR`` (run it
inside ``unshare -m`` so the mount is private to it) and exits 77 when mounting is refused;
``... fsize DIR`` instead limits every file to 5 MB with RLIMIT_FSIZE (SIGXFSZ ignored, so writes
fail with EFBIG). Either way it drives a real recorder over real files with a synthetic drive and
prints one JSON object: queue entries, metrics and leftover files.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from shared.messages import SensorMessage
from shared.snapshot import SnapshotReader
from tests.vehicle.conftest import state_payload
from vehicle.config.tree import load_config
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.upload.queue import UploadQueue

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
SWEEP_BYTES = 200_000
BRAKES_S = (2.0, 5.0, 8.0, 15.0)  # each cuts a ~3.3 MB snapshot
SWERVE_S = 12.0                    # cuts a ~10 MB snapshot, larger than the whole disk
END_S = 17.0


def _limit(mode: str, directory: Path) -> None:
    if mode == "tmpfs":
        directory.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(directory)],
                              capture_output=True, check=False)
        if done.returncode != 0:
            sys.exit(77)
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (5_000_000, 5_000_000))


def _drive() -> list[SensorMessage]:
    """LiDAR 10 Hz of incompressible sweeps, vehicle state 50 Hz with brakes and one swerve."""
    msgs: list[SensorMessage] = []
    for k in range(int(END_S * 10)):
        t = T0 + k * NS // 10
        msgs.append(SensorMessage("lidar/top", "lidar", t, t, k, "lidar_points_v1", os.urandom(SWEEP_BYTES)))
    for k in range(int(END_S * 50)):
        s = k / 50
        braking = any(b <= s < b + 0.3 for b in BRAKES_S)
        swerving = SWERVE_S <= s < SWERVE_S + 0.3
        payload = state_payload(accel_mps2=-6.0 if braking else 0.0, lat_accel_mps2=6.0 if swerving else 0.0)
        t = T0 + k * NS // 50
        msgs.append(SensorMessage("vehicle_state", "vs", t, t, k, "vehicle_state_v1", payload))
    return sorted(msgs, key=lambda m: (m.t_sensor_ns, m.topic))


def main() -> None:
    mode, directory = sys.argv[1], Path(sys.argv[2])
    _limit(mode, directory)
    cfg = load_config(None, {
        "vehicle_id": "full-car", "data_dir": str(directory / "vehicle"), "timesync": {"expected_hz": {}},
        "triggers": {
            "brake": {"kind": "hard_brake", "min_duration_s": 0.1, "pre_s": 1.0, "post_s": 0.5,
                      "cooldown_s": 0.0, "priority": 80},
            "swerve": {"kind": "swerve", "min_duration_s": 0.1, "pre_s": 4.5, "post_s": 0.5,
                       "cooldown_s": 0.0, "priority": 50}}})
    metrics = VehicleMetrics()
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    recorder = Recorder(cfg, metrics, queue)
    for msg in _drive():
        recorder.ingest(msg)
    recorder.flush(30)
    recorder.close()
    readable = {}
    for entry in queue.entries(("pending",)):
        with SnapshotReader(queue.path(entry)) as reader:
            readable[entry.file_name] = sum(1 for _ in reader.messages()) == sum(
                c.count for c in reader.manifest.channels)
    print(json.dumps({
        "mode": mode,
        "entries": [{"file": e.file_name, "state": e.state, "reason": e.reason, "priority": e.priority,
                     "created_ns": e.created_ns} for e in queue.entries()],
        "readable": readable,
        "files": sorted(p.name for p in cfg.snapshots_dir.iterdir()),
        "drops_disk": metrics.value("avdata_vehicle_drops_total", {"stage": "disk", "reason": "disk_full"}),
        "disk_full_retried": metrics.value("avdata_vehicle_disk_full_total", {"outcome": "retried"}),
        "disk_full_dropped": metrics.value("avdata_vehicle_disk_full_total", {"outcome": "dropped"}),
        "snapshots_failed": metrics.value("avdata_vehicle_snapshots_total", {"result": "failed"}),
        "snapshots_written": metrics.value("avdata_vehicle_snapshots_total", {"result": "written"}),
    }))
    queue.close()


if __name__ == "__main__":
    main()
