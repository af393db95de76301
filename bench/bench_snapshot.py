"""Snapshot write (MCAP, lz4 chunks, CRCs, sha256, fsync, rename, sidecar) vs raw write+fsync of
the same payload bytes, and trigger → durable snapshot latency, measured in the same run."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from shared.payloads import VehicleState, encode_small
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from vehicle.config import load_config
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.snapshot_writer import SnapshotMeta, WrittenSnapshot, write_snapshot
from vehicle.upload_queue import UploadQueue
from vehicle.windows import PendingWindow

NS = 1_000_000_000


def _items(seconds: float, sweep_bytes: int) -> dict[str, list[tuple[int, SensorMessage]]]:
    """LiDAR sweeps at 10 Hz (half random, half zeros: realistic lz4 ratio) and IMU at 200 Hz."""
    t0 = 1_700_000_000 * NS
    sweep = os.urandom(sweep_bytes // 2) + bytes(sweep_bytes // 2)
    lidar = [(t0 + k * NS // 10, SensorMessage("lidar/top", "l", t0 + k * NS // 10, 0, k, "lidar_points_v1",
                                               sweep)) for k in range(int(seconds * 10))]
    imu = [(t0 + k * NS // 200, SensorMessage("imu", "i", t0 + k * NS // 200, 0, k, "imu_v1", b"\0" * 64))
           for k in range(int(seconds * 200))]
    return {"lidar/top": lidar, "imu": imu}


def _raw_write(path: Path, items: dict[str, list[tuple[int, SensorMessage]]]) -> float:
    started = time.perf_counter()
    with open(path, "wb") as fh:
        for msgs in items.values():
            for _, m in msgs:
                fh.write(m.payload)
        fh.flush()
        os.fsync(fh.fileno())
    return time.perf_counter() - started


def _latency(tmp: Path, seconds: float, sweep_bytes: int) -> float:
    """Wall time from the message that completes a window to the snapshot being queued."""
    cfg = load_config(None, {"vehicle_id": "bench", "data_dir": str(tmp / "lat"), "timesync": {"expected_hz": {}},
                             "triggers": {"hb": {"kind": "hard_brake", "min_duration_s": 0.0,
                                                 "pre_s": seconds - 1.0, "post_s": 1.0}}})
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    done = threading.Event()
    stamp: list[float] = []

    def on_snapshot(_: WrittenSnapshot) -> None:
        stamp.append(time.perf_counter())
        done.set()

    rec = Recorder(cfg, VehicleMetrics(), queue, on_snapshot=on_snapshot)
    items = _items(seconds + 1.0, sweep_bytes)
    for _, m in items["lidar/top"]:
        rec.ingest(m.stamped(m.t_sensor_ns))
    t0 = items["lidar/top"][0][0]
    brake_t = t0 + round((seconds - 1.0) * NS)

    def vs(t: int, accel: float) -> SensorMessage:
        return SensorMessage("vehicle_state", "v", t, t, t, "vehicle_state_v1",
                             encode_small(VehicleState(0, 0, 0, 10, accel, 0, 0, True)))
    rec.ingest(vs(brake_t, -8.0))
    closing = vs(brake_t + 1 * NS + 1, 0.0)
    started = time.perf_counter()
    rec.ingest(closing)
    done.wait(60)
    rec.close()
    queue.close()
    return stamp[0] - started


def run(quick: bool = False) -> list[Figure]:
    seconds, sweep = (4.0, 512 * 1024) if quick else (40.0, 2 * 1024 * 1024)
    items = _items(seconds, sweep)
    payload = sum(len(m.payload) for msgs in items.values() for _, m in msgs)
    ev = TriggerEvent(TriggerKind.HARD_BRAKE, 0, items["imu"][0][0], items["imu"][-1][0], 80, TriggerSource.RULE)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        raw_s = _raw_write(tmp / "raw.bin", items)
        started = time.perf_counter()
        snap = write_snapshot(tmp / "snaps", PendingWindow(ev.start_ns, ev.end_ns, (ev,)), items,
                              SnapshotMeta("bench", "0"))
        ours_s = time.perf_counter() - started
        latency_s = _latency(tmp, seconds, sweep)
    return [
        Figure("snapshot_write", payload / ours_s / 1e6, "MB/s", payload / raw_s / 1e6, "raw write+fsync",
               note=f"{payload / 1e6:.0f} MB payload, file {snap.manifest.size_bytes / 1e6:.0f} MB"),
        Figure("trigger_to_durable_snapshot", latency_s * 1e3, "ms", raw_s * 1e3,
               "raw write+fsync of the same bytes", higher_is_better=False),
    ]


if __name__ == "__main__":
    main_for(run)
