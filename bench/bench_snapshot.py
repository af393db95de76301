"""Snapshot write (MCAP, lz4 chunks, CRCs, sha256, fsync, rename, sidecar) vs raw write+fsync of
the same payload bytes, and trigger → durable snapshot latency at p50 and p99 over many windows cut
by the real recorder path (quick: 10 windows, full: 50), beside the raw write+fsync of each
window's payload, all measured in the same run."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from shared.payloads import VehicleState, encode_small
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from vehicle.config.tree import load_config
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.snapshot.writer import SnapshotMeta, WrittenSnapshot, write_snapshot
from vehicle.triggers.windows import PendingWindow
from vehicle.upload.queue import UploadQueue

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


@dataclass(frozen=True)
class _Latencies:
    """Per-window seconds: our trigger → durable path and the raw write+fsync of the same payload."""

    ours_s: list[float]
    raw_s: list[float]
    window_bytes: int


def _state(t_ns: int, accel_mps2: float) -> SensorMessage:
    return SensorMessage("vehicle_state", "v", t_ns, t_ns, t_ns, "vehicle_state_v1",
                         encode_small(VehicleState(0, 0, 0, 10, accel_mps2, 0, 0, True)))


def _latencies(tmp: Path, windows: int, pre_s: float, post_s: float, sweep_bytes: int) -> _Latencies:
    """Drive one :class:`Recorder` through ``windows`` hard brakes, each cut into its own snapshot.

    Per window: LiDAR at 10 Hz, IMU at 200 Hz and vehicle state at 50 Hz are ingested up to the
    window's end; the clock starts at the state message that completes the window (the one that
    makes the recorder cut it) and stops when the snapshot is fsynced, renamed and queued for
    upload. The next window starts only then, so each figure is one trigger's latency, not a queue.
    """
    # max_latency_s = 0: the figure starts at the cut decision; in service the cut comes
    # [sources] max_latency_s of vehicle time after the window's end, by design (late sensors).
    cfg = load_config(None, {"vehicle_id": "bench", "data_dir": str(tmp / "lat"), "timesync": {"expected_hz": {}},
                             "sources": {"max_latency_s": 0.0},
                             "buffer": {"max_age_s": pre_s + post_s + 2.0},
                             "triggers": {"hb": {"kind": "hard_brake", "min_duration_s": 0.0, "cooldown_s": 0.1,
                                                 "pre_s": pre_s, "post_s": post_s}}})
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    done = threading.Event()
    stamps: list[float] = []

    def on_snapshot(_: WrittenSnapshot) -> None:
        stamps.append(time.perf_counter())
        done.set()

    rec = Recorder(cfg, VehicleMetrics(), queue, on_snapshot=on_snapshot)
    pool = [os.urandom(sweep_bytes // 2) + bytes(sweep_bytes // 2) for _ in range(16)]
    imu = bytes(64)
    period_ns = round((pre_s + post_s + 0.5) * NS)
    t0 = 1_700_000_000 * NS
    ours: list[float] = []
    raw: list[float] = []
    sizes: list[int] = []
    step_ns = NS // 200
    k = 0
    for w in range(windows):
        # On the 50 Hz state grid (every 4th 5 ms step from t0), so a state sample carries the brake.
        brake_ns = t0 + round((pre_s * NS + w * period_ns) / (4 * step_ns)) * 4 * step_ns
        end_ns = brake_ns + round(post_s * NS)
        while (t := t0 + k * step_ns) <= end_ns:
            if k % 20 == 0:
                rec.ingest(SensorMessage("lidar/top", "l", t, t, k // 20, "lidar_points_v1", pool[k % len(pool)]))
            if k % 4 == 0:
                rec.ingest(_state(t, -8.0 if t == brake_ns else 0.0))
            rec.ingest(SensorMessage("imu", "i", t, t, k, "imu_v1", imu))
            k += 1
        closing = _state(t0 + k * step_ns + 1, 0.0)
        done.clear()
        started = time.perf_counter()
        rec.ingest(closing)
        if not done.wait(60):
            raise RuntimeError(f"window {w} was not written within 60 s")
        ours.append(stamps[-1] - started)
        items = rec.buffer.window(brake_ns - round(pre_s * NS), end_ns)
        sizes.append(sum(len(m.payload) for msgs in items.values() for _, m in msgs))
        raw.append(_raw_write(tmp / f"raw-{w}.bin", items))
        (tmp / f"raw-{w}.bin").unlink()
        k = (k // 20 + 1) * 20  # the next window starts on a sweep boundary
    rec.close()
    queue.close()
    return _Latencies(ours, raw, round(statistics.median(sizes)))


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(quick: bool = False) -> list[Figure]:
    seconds, sweep = (4.0, 512 * 1024) if quick else (40.0, 2 * 1024 * 1024)
    windows, pre_s, post_s, lat_sweep = (10, 1.5, 0.5, 256 * 1024) if quick else (50, 3.0, 1.0, 512 * 1024)
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
        lat = _latencies(tmp, windows, pre_s, post_s, lat_sweep)
    note = (f"{windows} windows of {pre_s + post_s:g} s, ~{lat.window_bytes / 1e6:.1f} MB payload each; "
            "from the message that completes the window to fsynced, renamed and queued")
    return [
        Figure("snapshot_write", payload / ours_s / 1e6, "MB/s", payload / raw_s / 1e6, "raw write+fsync",
               note=f"{payload / 1e6:.0f} MB payload, file {snap.manifest.size_bytes / 1e6:.0f} MB"),
        Figure("trigger_to_durable_snapshot_p50", _pct(lat.ours_s, 50) * 1e3, "ms", _pct(lat.raw_s, 50) * 1e3,
               "raw write+fsync of the same bytes, p50", higher_is_better=False, note=note),
        Figure("trigger_to_durable_snapshot_p99", _pct(lat.ours_s, 99) * 1e3, "ms", _pct(lat.raw_s, 99) * 1e3,
               "raw write+fsync of the same bytes, p99", higher_is_better=False, note=note),
    ]


if __name__ == "__main__":
    main_for(run)
