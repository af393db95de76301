"""tus upload of a snapshot (chunked PATCH, offsets persisted per chunk, server-side sha256) vs one
raw aiohttp POST of the same bytes to the same loopback server, in the same run; and goodput over a
shaped, flaky link (hil.link_emulator: a bandwidth cap and a cut every few MB) vs that link's capacity,
measured by a plain POST through the same link without cuts."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.common import Figure, main_for
from hil.link_emulator import LinkEmulator, LinkProfile
from shared.messages import SensorMessage
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from tests.vehicle.tus_server import TusState, make_app
from vehicle.config.tree import UploaderConfig
from vehicle.metrics import VehicleMetrics
from vehicle.snapshot.writer import SnapshotMeta, write_snapshot
from vehicle.triggers.windows import PendingWindow
from vehicle.upload.queue import UploadQueue
from vehicle.upload.uploader import TusUploader

NS = 1_000_000_000


async def _sink(request: web.Request) -> web.Response:
    n = 0
    async for piece in request.content.iter_chunked(1 << 16):
        n += len(piece)
    return web.Response(text=str(n))


async def _setup(tmp: Path, total_bytes: int) -> tuple[web.AppRunner, int, str, UploadQueue, bytes]:
    """A loopback tus server with a raw /sink route, and one queued snapshot of ~total_bytes of noise."""
    app = make_app(TusState(tokens={"bench": "t"}))
    app.router.add_post("/sink", _sink)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    t0 = 1_700_000_000 * NS
    n = max(1, total_bytes // (1 << 20))
    msgs = [(t0 + k, SensorMessage("lidar/top", "l", t0 + k, 0, k, "raw", os.urandom(1 << 20))) for k in range(n)]
    ev = TriggerEvent(TriggerKind.RANDOM, t0, t0, t0 + n, 1, TriggerSource.RULE)
    snap = write_snapshot(tmp, PendingWindow(t0, t0 + n, (ev,)), {"lidar/top": msgs}, SnapshotMeta("bench", "0"))
    queue = UploadQueue(tmp / "q.sqlite3", tmp, 1 << 40)
    queue.enqueue(snap)
    return runner, runner.addresses[0][1], snap.manifest.snapshot_id, queue, snap.path.read_bytes()


async def _post(session: aiohttp.ClientSession, url: str, data: bytes) -> float:
    started = time.perf_counter()
    async with session.post(url, data=data) as resp:
        assert int(await resp.text()) == len(data)
    return time.perf_counter() - started


async def _bench(tmp: Path, total_bytes: int, chunk: int) -> tuple[float, float, int]:
    runner, port, snapshot_id, queue, data = await _setup(tmp, total_bytes)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        raw_s = await _post(session, base + "/sink", data)
        up = TusUploader(session, UploaderConfig(url=base + "/files/", token="t", chunk_bytes=chunk),
                         "bench", queue, VehicleMetrics())
        started = time.perf_counter()
        await up.upload(snapshot_id)
        tus_s = time.perf_counter() - started
    queue.close()
    await runner.cleanup()
    return tus_s, raw_s, len(data)


async def _shaped(tmp: Path, total_bytes: int, rate_bps: float, cut_every: int) -> tuple[float, float, int, int]:
    """(goodput seconds, capacity seconds, bytes, cuts) through the link emulator."""
    runner, port, snapshot_id, queue, data = await _setup(tmp, total_bytes)
    async with LinkEmulator("127.0.0.1", port, LinkProfile(rate_bps=rate_bps)) as clean, \
            aiohttp.ClientSession() as session:
        capacity_s = await _post(session, f"http://127.0.0.1:{clean.port}/sink", data)
    async with LinkEmulator("127.0.0.1", port, LinkProfile(rate_bps=rate_bps, cut_after_bytes=cut_every)) as flaky, \
            aiohttp.ClientSession() as session:
        cfg = UploaderConfig(url=f"http://127.0.0.1:{flaky.port}/files/", token="t", chunk_bytes=256 * 1024,
                             backoff_initial_s=0.05, backoff_max_s=0.5, max_attempts=1000)
        up = TusUploader(session, cfg, "bench", queue, VehicleMetrics())
        started = time.perf_counter()
        await up.upload(snapshot_id)
        goodput_s = time.perf_counter() - started
        cuts = flaky.stats.cuts
    queue.close()
    await runner.cleanup()
    return goodput_s, capacity_s, len(data), cuts


def run(quick: bool = False) -> list[Figure]:
    # Cut connections are the point of the shaped-link run; the test server's log of each is noise here.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    total, chunk = (16 << 20, 1 << 20) if quick else (256 << 20, 4 << 20)
    with tempfile.TemporaryDirectory() as tmp:
        tus_s, raw_s, size = asyncio.run(_bench(Path(tmp), total, chunk))
    shaped_total, rate = (4 << 20, 4e6) if quick else (24 << 20, 4e6)
    with tempfile.TemporaryDirectory() as tmp:
        good_s, cap_s, shaped_size, cuts = asyncio.run(_shaped(Path(tmp), shaped_total, rate, 3 << 20))
    return [Figure("upload_tus_loopback", size / tus_s / 1e6, "MB/s", size / raw_s / 1e6,
                   "one raw aiohttp POST, same bytes", note=f"{chunk >> 20} MiB chunks"),
            Figure("upload_goodput_flaky_link", shaped_size / good_s / 1e6, "MB/s", shaped_size / cap_s / 1e6,
                   "plain POST through the same 4 MB/s link, no cuts",
                   note=f"{cuts} cuts (one every 3 MB), 256 KiB chunks")]


if __name__ == "__main__":
    main_for(run)
