"""Fleet load on two daemon processes + the relay (PostgreSQL + NATS + one store), beside a bare
aiohttp handler answering 204 under the same concurrency in the same run.

Figures: p99 request latency of the fleet's tus requests against the p99 of the bare handler
(same number of requests, same body sizes, same client, same concurrency), and the number of
uploads held in flight at once against the concurrency asked for. Needs PostgreSQL and NATS
(``AVDATA_BENCH_PG_DSN``, ``AVDATA_BENCH_NATS_URL``; defaults on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import numpy as np

from bench.common import Figure, main_for
from bench.loadgen import NS, Job, make_snapshot, run_fleet
from bench.loadgen_cluster import Cluster, free_port
from cloud_ingest import auth
from cloud_ingest.storage.metadata.postgres import PostgresDB

PG_DSN = os.environ.get("AVDATA_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
NATS_URL = os.environ.get("AVDATA_BENCH_NATS_URL", "nats://127.0.0.1:4222")
T0_NS = 1_700_000_000 * NS
BARE = ("from aiohttp import web\nasync def h(r):\n    await r.read()\n    return web.Response(status=204)\n"
        "app = web.Application(client_max_size=1 << 24)\napp.router.add_route('*', '/{tail:.*}', h)\n"
        "web.run_app(app, host='127.0.0.1', port=int(__import__('sys').argv[1]), print=None)\n")


async def _bare_p99(url: str, sizes: list[int], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one(http: aiohttp.ClientSession, n: int) -> None:
        async with gate:
            t = time.perf_counter()
            async with http.patch(url, data=b"x" * n) as r:
                await r.read()
            lat.append(time.perf_counter() - t)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as http:
        await asyncio.gather(*(one(http, n) for n in sizes))
    return float(np.percentile(lat, 99))


def _bare(sizes: list[int], concurrency: int) -> float:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("bare aiohttp server did not start") from None
                time.sleep(0.05)
        return asyncio.run(_bare_p99(f"http://127.0.0.1:{port}/x", sizes, concurrency))
    finally:
        proc.terminate()
        proc.wait(10)


def run(quick: bool = False) -> list[Figure]:
    vehicles, concurrency, chunk = (30, 16, 8 * 1024) if quick else (200, 64, 8 * 1024)
    schema, tag = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:10]
    lidar = np.random.default_rng(0).standard_normal((300, 4)).astype("<f4").tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "cloud.toml"
        config.write_text(f'data_dir = "{root / "cloud"}"\n[db]\nbackend = "postgres"\ndsn = "{PG_DSN}"\n'
                          f'schema = "{schema}"\n[relay]\nnats_url = "{NATS_URL}"\nstream = "B_{tag}"\n'
                          f'subject_prefix = "b{tag}.raw"\n')
        db = PostgresDB(PG_DSN, schema)
        db.migrate()
        try:
            jobs: list[Job] = []
            for v in range(vehicles):
                vid, token = f"veh-{v:03d}", auth.register(db, f"veh-{v:03d}")
                for k in range(2 if v % 3 == 0 else 1):
                    path = root / f"{vid}-{k}.mcap"
                    sha = make_snapshot(path, vid, T0_NS + v * 100 * NS + k * 3 * NS, 2.0, lidar)
                    jobs.append(Job(vid, token, path, sha, first=len(jobs), switch=len(jobs) % 4 == 0))
            with Cluster(config, daemons=2, relay=True) as cluster:
                t0 = time.perf_counter()
                res = asyncio.run(run_fleet(cluster.bases, jobs, concurrency, chunk))
                elapsed = time.perf_counter() - t0
            sizes = [min(chunk, j.path.stat().st_size) for j in jobs for _ in range(3)]
            bare = _bare(sizes[: len(res.latencies_s)], concurrency)
        finally:
            db.drop_schema()
            db.close()
    return [
        Figure("scale_request_p99_latency", res.p(99) * 1e3, "ms", bare * 1e3, "bare aiohttp 204, same load",
               higher_is_better=False, note=f"{len(jobs)} uploads by {vehicles} vehicles, 2 daemons + relay, "
               f"{len(res.latencies_s)} requests in {elapsed:.1f} s, p50 {res.p(50) * 1e3:.0f} ms"),
        Figure("scale_concurrent_uploads", res.in_flight_max, "uploads", concurrency, "concurrency asked",
               note=f"{res.retries} retried requests"),
    ]


if __name__ == "__main__":
    main_for(run)
