"""Snapshot write (MCAP, lz4 chunks where they help, CRCs, sha256, fsync, rename, sidecar) vs raw
write+fsync of the same payload bytes, for two payload mixes measured in the same run:

- **real**: H.265 access units from PyAV (real nuScenes camera frames, panned so consecutive
  frames differ, 30 fps), the real KITTI HDL-64 and nuScenes LIDAR_TOP sweeps as ``lidar_points_v1``
  (10 Hz each), IMU at 200 Hz and vehicle state at 50 Hz as their real envelopes;
- **incompressible**: the same message sizes and rates filled with ``os.urandom``.

Plus trigger → durable snapshot latency at p50 and p99 over many windows cut by the real recorder
path (quick: 10 windows, full: 50) with the real mix, beside the raw write+fsync of each window's
payload.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from shared.payloads import LIDAR_DTYPE, ImuSample, VehicleState, encode_points, encode_small
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from vehicle.config.tree import load_config
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.snapshot.writer import SnapshotMeta, WrittenSnapshot, write_snapshot
from vehicle.triggers.windows import PendingWindow
from vehicle.upload.queue import UploadQueue

NS = 1_000_000_000
REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"
Items = dict[str, list[tuple[int, SensorMessage]]]


@cache
def camera_units(n: int = 60, width: int = 800, height: int = 448) -> tuple[tuple[bytes, bool], ...]:
    """``n`` H.265 access units (bytes, keyframe) of the real nuScenes front camera, panning 4 px a
    frame over a frame twice as wide, encoded as the vehicle's cameras are (no B-frames, a
    keyframe every 30 frames with its parameter sets)."""
    img = Image.open(next((REAL / "nuscenes").glob("*CAM_FRONT__*.jpg"))).convert("RGB")
    wide = np.asarray(img.resize((width * 2, height)))
    ctx: Any = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), 30
    ctx.options = {"preset": "ultrafast", "x265-params": "keyint=30:min-keyint=30:bframes=0:repeat-headers=1:"
                                                         "log-level=error"}
    out: list[tuple[bytes, bool]] = []
    for i in range(n):
        x = (4 * i) % width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(wide[:, x:x + width]), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    return tuple(out)


@cache
def lidar_sweeps() -> tuple[bytes, ...]:
    """The real KITTI and nuScenes sweeps as ``lidar_points_v1`` payloads (ring from the file where
    it has one, t_offset spread over a 100 ms revolution by azimuth)."""
    kitti = np.fromfile(REAL / "kitti" / "velodyne" / "000000.bin", dtype="<f4").reshape(-1, 4)
    nusc = np.fromfile(next((REAL / "nuscenes").glob("*LIDAR_TOP*.pcd.bin")), dtype="<f4").reshape(-1, 5)
    out = []
    for arr, ring in ((kitti, None), (nusc, nusc[:, 4])):
        pts = np.zeros(len(arr), LIDAR_DTYPE)
        pts["x"], pts["y"], pts["z"], pts["intensity"] = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
        pts["ring"] = 0 if ring is None else ring.astype(np.uint16)
        az = np.arctan2(arr[:, 1], arr[:, 0])
        pts["t_offset_ns"] = ((az + np.pi) / (2 * np.pi) * 100e6).astype(np.int32)
        out.append(bytes(encode_points(pts, LIDAR_DTYPE)))
    return tuple(out)


def _imu(k: int) -> bytes:
    return encode_small(ImuSample((0.1 * np.sin(k / 50), 0.02, 9.81), (0.0, 0.001 * k % 7, 0.01)))


def _state(t_ns: int, accel_mps2: float) -> SensorMessage:
    return SensorMessage("vehicle_state", "v", t_ns, t_ns, t_ns, "vehicle_state_v1",
                         encode_small(VehicleState(0, 0, 0, 10, accel_mps2, 0, 0, True)))


def _items(seconds: float, incompressible: bool) -> Items:
    """Camera at 30 fps, two LiDARs at 10 Hz, IMU at 200 Hz, vehicle state at 50 Hz, for ``seconds``."""
    t0 = 1_700_000_000 * NS
    units, sweeps = camera_units(), lidar_sweeps()

    def body(b: bytes) -> bytes:
        return os.urandom(len(b)) if incompressible else b

    def at(hz: int, k: int) -> int:
        return t0 + k * NS // hz

    items: Items = {
        "camera/front": [(at(30, k), SensorMessage("camera/front", "c", at(30, k), 0, k, "h265",
                                                   body(units[k % len(units)][0]), keyframe=units[k % len(units)][1]))
                         for k in range(int(seconds * 30))],
        "vehicle_state": [(at(50, k), SensorMessage("vehicle_state", "v", at(50, k), 0, k, "vehicle_state_v1", body(
            encode_small(VehicleState(k * 0.2, 0, 0, 10, 0, 0, 0, True))))) for k in range(int(seconds * 50))],
        "imu": [(at(200, k), SensorMessage("imu", "i", at(200, k), 0, k, "imu_v1", body(_imu(k))))
                for k in range(int(seconds * 200))]}
    for j, sweep in enumerate(sweeps):
        topic = f"lidar/{j}"
        items[topic] = [(at(10, k), SensorMessage(topic, topic, at(10, k), 0, k, "lidar_points_v1", body(sweep)))
                        for k in range(int(seconds * 10))]
    return items


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


def _latencies(tmp: Path, windows: int, pre_s: float, post_s: float) -> _Latencies:
    """Drive one :class:`Recorder` through ``windows`` hard brakes, each cut into its own snapshot.

    Per window: the real mix (camera, two LiDARs, IMU, vehicle state) is ingested up to the
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
    units, sweeps = camera_units(), lidar_sweeps()
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
                for j, sweep in enumerate(sweeps):
                    rec.ingest(SensorMessage(f"lidar/{j}", "l", t, t, k // 20, "lidar_points_v1", sweep))
            if k * 3 % 20 == 0:  # 30 fps on the 5 ms grid: every 6.67 steps, rounded onto the grid
                unit, key = units[(k * 3 // 20) % len(units)]
                rec.ingest(SensorMessage("camera/front", "c", t, t, k * 3 // 20, "h265", unit, keyframe=key))
            if k % 4 == 0:
                rec.ingest(_state(t, -8.0 if t == brake_ns else 0.0))
            rec.ingest(SensorMessage("imu", "i", t, t, k, "imu_v1", _imu(k)))
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


def _write_once(tmp: Path, name: str, items: Items) -> tuple[float, float, int, int]:
    """(ours_s, raw_s, payload bytes, file bytes) for one snapshot of ``items``."""
    payload = sum(len(m.payload) for msgs in items.values() for _, m in msgs)
    first = min(msgs[0][0] for msgs in items.values())
    last = max(msgs[-1][0] for msgs in items.values())
    ev = TriggerEvent(TriggerKind.HARD_BRAKE, 0, first, last, 80, TriggerSource.RULE)
    raw_s = _raw_write(tmp / f"{name}.raw", items)
    (tmp / f"{name}.raw").unlink()
    started = time.perf_counter()
    snap = write_snapshot(tmp / name, PendingWindow(ev.start_ns, ev.end_ns, (ev,)), items, SnapshotMeta("bench", "0"))
    return time.perf_counter() - started, raw_s, payload, snap.manifest.size_bytes


def run(quick: bool = False) -> list[Figure]:
    seconds = 4.0 if quick else 40.0
    windows, pre_s, post_s = (10, 1.5, 0.5) if quick else (50, 3.0, 1.0)
    figures = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for mix, incompressible in (("real", False), ("incompressible", True)):
            ours_s, raw_s, payload, size = _write_once(tmp, mix, _items(seconds, incompressible))
            figures.append(Figure(f"snapshot_write_{mix}", payload / ours_s / 1e6, "MB/s", payload / raw_s / 1e6,
                                  "raw write+fsync", note=f"{seconds:g} s, {payload / 1e6:.0f} MB payload, "
                                                          f"file {size / 1e6:.0f} MB"))
        lat = _latencies(tmp, windows, pre_s, post_s)
    note = (f"{windows} windows of {pre_s + post_s:g} s of the real mix, ~{lat.window_bytes / 1e6:.1f} MB payload "
            "each; from the message that completes the window to fsynced, renamed and queued")
    return [
        *figures,
        Figure("trigger_to_durable_snapshot_p50", _pct(lat.ours_s, 50) * 1e3, "ms", _pct(lat.raw_s, 50) * 1e3,
               "raw write+fsync of the same bytes, p50", higher_is_better=False, note=note),
        Figure("trigger_to_durable_snapshot_p99", _pct(lat.ours_s, 99) * 1e3, "ms", _pct(lat.raw_s, 99) * 1e3,
               "raw write+fsync of the same bytes, p99", higher_is_better=False, note=note),
    ]


if __name__ == "__main__":
    main_for(run)
