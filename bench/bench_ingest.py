"""Upload throughput through our tus endpoint on loopback, beside hashlib.sha256 over the same bytes.

The daemon (the real ``create_app``, SQLite, local object store) runs on a background event loop in
this process; a ``requests`` session uploads one large valid snapshot in PATCHes of ``chunk`` bytes.
Figures: end-to-end MB/s (POST to the durable final 204, ingest included) against SHA-256 MB/s
over the same file, and p99 PATCH latency against the floor for one chunk (hash + write + fsync).
The integrity scan runs while the bytes arrive (:mod:`cloud_ingest.integrity.mcap_stream`), so the final
PATCH only checks the footer, links the raw object, commits and writes the processed outputs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from aiohttp import web

from bench.common import Figure, main_for
from cloud_ingest import auth
from cloud_ingest.app import create_app, make_runner
from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.metadata.registry import open_db
from shared.messages import SensorMessage
from shared.snapshot import SnapshotWriter

NS = 1_000_000_000


def _snapshot(path: Path, size_mb: int) -> tuple[str, int]:
    """A valid snapshot of about ``size_mb`` MB: 10 Hz lidar-sized random payloads (incompressible)."""
    rng = np.random.default_rng(0)
    n = max(10, size_mb * 4)
    t0 = 1_700_000_000 * NS
    w = SnapshotWriter(path)
    for i in range(n):
        payload = rng.integers(0, 256, 256 * 1024, dtype=np.uint8).tobytes()
        w.add(SensorMessage("lidar/top", "lidar_top", t0 + i * NS // 10, 0, i, "lidar_points_v1", payload),
              t0 + i * NS // 10)
    m = w.finish(snapshot_id="bench", vehicle_id="bench-car", created_ns=t0, start_ns=t0,
                 end_ns=t0 + (n - 1) * NS // 10, triggers=(), software_version="0", model_version="m",
                 calibration_version="c")
    return m.sha256, m.size_bytes


def _serve(cfg: CloudConfig) -> tuple[asyncio.AbstractEventLoop, web.AppRunner, threading.Thread]:
    loop = asyncio.new_event_loop()
    runner = make_runner(create_app(cfg), handle_signals=False)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", cfg.port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    return loop, runner, thread


def _floor_chunk_s(data: bytes, chunk: int, where: Path) -> float:
    """Median time to hash, write and fsync one chunk locally: what a PATCH cannot beat."""
    times = []
    with open(where / "floor.bin", "wb") as fh:
        for off in range(0, min(len(data), 16 * chunk), chunk):
            t = time.perf_counter()
            hashlib.sha256(data[off:off + chunk]).digest()
            fh.write(data[off:off + chunk])
            fh.flush()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _disk_mbps(data: bytes, chunk: int, where: Path) -> float:
    """Raw write + fsync of every chunk of ``data``: the disk's side of what each PATCH must do."""
    t = time.perf_counter()
    with open(where / "disk.bin", "wb") as fh:
        for off in range(0, len(data), chunk):
            fh.write(data[off:off + chunk])
            fh.flush()
            os.fsync(fh.fileno())
    mbps = len(data) / (time.perf_counter() - t) / 1e6
    (where / "disk.bin").unlink()
    return mbps


def run(quick: bool = False) -> list[Figure]:
    size_mb, chunk = (16, 1 << 20) if quick else (256, 4 << 20)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        snap = root / "big.mcap"
        sha, size = _snapshot(snap, size_mb)
        data = snap.read_bytes()
        t = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        sha_mbps = size / (time.perf_counter() - t) / 1e6
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        cfg = CloudConfig(data_dir=root / "cloud", port=port)
        cfg.data_dir.mkdir()
        db = open_db("sqlite", sqlite_path=str(cfg.sqlite_path))
        token = auth.register(db, "bench-car")
        db.close()
        loop, runner, thread = _serve(cfg)
        try:
            base = f"http://127.0.0.1:{port}"
            hdrs = {"Tus-Resumable": "1.0.0", "X-Avdata-Vehicle": "bench-car", "Authorization": f"Bearer {token}"}
            patch_s: list[float] = []
            with requests.Session() as http:
                t0 = time.perf_counter()
                r = http.post(base + "/files/", headers={
                    **hdrs, "Upload-Length": str(size),
                    "Upload-Metadata": "sha256 " + base64.b64encode(sha.encode()).decode()})
                url = base + r.headers["Location"]
                view = memoryview(data)
                for off in range(0, size, chunk):
                    t = time.perf_counter()
                    r = http.patch(url, data=bytes(view[off:off + chunk]), headers={
                        **hdrs, "Upload-Offset": str(off), "Content-Type": "application/offset+octet-stream"})
                    patch_s.append(time.perf_counter() - t)
                    if r.status_code != 204:
                        raise RuntimeError(f"PATCH at {off} answered {r.status_code}: {r.text}")
                total_s = time.perf_counter() - t0
            if not r.headers.get("X-Avdata-Segments"):
                raise RuntimeError("the final PATCH did not acknowledge a segment")
            floor_s = _floor_chunk_s(data, chunk, root)
            disk_mbps = _disk_mbps(data, chunk, root)
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
    p99 = float(np.percentile(patch_s[:-1] or patch_s, 99))
    return [
        Figure("ingest_upload_throughput", size / total_s / 1e6, "MB/s", sha_mbps, "hashlib.sha256 same bytes",
               note=f"{size / 1e6:.0f} MB in {chunk >> 20} MiB PATCHes, ingest included"),
        Figure("ingest_upload_vs_disk", size / total_s / 1e6, "MB/s", disk_mbps, "raw write+fsync per chunk",
               note="the durable-offset floor: each acknowledged PATCH is on disk"),
        Figure("ingest_patch_p99_latency", p99 * 1e3, "ms", floor_s * 1e3, "sha256+write+fsync of one chunk",
               higher_is_better=False, note=f"{len(patch_s)} PATCHes, final one excluded"),
        Figure("ingest_final_patch_latency", patch_s[-1] * 1e3, "ms", floor_s * 1e3,
               "sha256+write+fsync of one chunk", higher_is_better=False,
               note="last chunk + footer/manifest check + raw link + DB commit + processed outputs"),
    ]


if __name__ == "__main__":
    main_for(run)
