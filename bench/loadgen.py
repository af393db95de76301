"""A simulated fleet for load tests and benchmarks: small real snapshots, uploaded over tus by many
vehicles at once, round robin over several daemons, some moving daemon mid-upload.

Each request's latency is recorded; a 409 (lease held, offset moved), 429 or 5xx answer is retried
after HEAD, as the vehicle uploader does, so the figures include the protocol's own recovery.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

from shared.messages import SensorMessage
from shared.payloads import ImuSample, VehicleState, encode_small
from shared.snapshot import SnapshotWriter
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource

NS = 1_000_000_000


def make_snapshot(path: Path, vehicle_id: str, t0_ns: int, duration_s: float, lidar_payload: bytes) -> str:
    """A finished snapshot (lidar 10 Hz, imu 50 Hz, vehicle state 20 Hz, one hard-brake trigger); its sha256."""
    msgs: list[SensorMessage] = []
    for hz, topic, sensor, enc in ((10, "lidar/top", "lidar_top", "lidar_points_v1"), (50, "imu", "imu0", "imu_v1"),
                                   (20, "vehicle_state", "can0", "vehicle_state_v1")):
        for i in range(int(duration_s * hz)):
            payload = lidar_payload if enc == "lidar_points_v1" else encode_small(
                ImuSample((0.1, 0.0, 9.8), (0.0, 0.0, 0.01)) if enc == "imu_v1"
                else VehicleState(i * 0.5, 0.0, 0.0, 10.0, -6.0 if i == hz else 0.0, 0.0, 0.0, True))
            msgs.append(SensorMessage(topic, sensor, t0_ns + i * NS // hz + hz, 0, i, enc, payload))
    msgs.sort(key=lambda m: m.t_sensor_ns)
    end = t0_ns + int(duration_s * NS) - 1
    w = SnapshotWriter(path)
    for m in msgs:
        w.add(m, m.t_sensor_ns)
    trig = TriggerEvent(TriggerKind.HARD_BRAKE, t0_ns + NS, t0_ns, end, 80, TriggerSource.RULE, "hard_brake", {})
    return w.finish(snapshot_id=path.stem, vehicle_id=vehicle_id, created_ns=end, start_ns=t0_ns, end_ns=end,
                    triggers=(trig,), software_version="load", model_version="m", calibration_version="c").sha256


@dataclass(frozen=True)
class Job:
    """One snapshot upload: ``switch`` moves it to the next daemon after the first chunk."""

    vehicle_id: str
    token: str
    path: Path
    sha256: str
    first: int
    switch: bool


@dataclass
class FleetResult:
    """Request latencies (s), acknowledged segment ids per job, the most uploads in flight at once."""

    latencies_s: list[float] = field(default_factory=list)
    segments: dict[Path, tuple[str, ...]] = field(default_factory=dict)
    in_flight_max: int = 0
    retries: int = 0
    _in_flight: int = 0

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else 0.0


async def _request(http: aiohttp.ClientSession, res: FleetResult, method: str, url: str,
                   **kw: object) -> aiohttp.ClientResponse:
    t = time.perf_counter()
    resp = await http.request(method, url, **kw)  # type: ignore[arg-type]
    await resp.read()
    res.latencies_s.append(time.perf_counter() - t)
    return resp


async def upload(http: aiohttp.ClientSession, bases: list[str], job: Job, res: FleetResult,
                 chunk: int) -> tuple[str, ...]:
    """Upload ``job`` with tus; return the acknowledged segment ids."""
    hdrs = {"Tus-Resumable": "1.0.0", "X-Avdata-Vehicle": job.vehicle_id, "Authorization": f"Bearer {job.token}"}
    data = job.path.read_bytes()
    base = bases[job.first % len(bases)]
    r = await _request(http, res, "POST", base + "/files/", headers={
        **hdrs, "Upload-Length": str(len(data)),
        "Upload-Metadata": "sha256 " + base64.b64encode(job.sha256.encode()).decode()})
    if r.status != 201:
        raise RuntimeError(f"{job.vehicle_id}: POST answered {r.status}")
    if r.headers.get("X-Avdata-Duplicate"):
        return tuple(r.headers["X-Avdata-Segments"].split(","))
    location, offset, patches = r.headers["Location"], 0, 0
    for attempt in range(50):
        if job.switch and patches == 1:
            base = bases[(job.first + 1) % len(bases)]
        r = await _request(http, res, "PATCH", base + location, data=data[offset:offset + chunk], headers={
            **hdrs, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        if r.status == 204:
            patches += 1
            offset = int(r.headers["Upload-Offset"])
            if offset == len(data):
                return tuple(r.headers["X-Avdata-Segments"].split(","))
            continue
        if r.status not in (409, 429) and r.status < 500:
            raise RuntimeError(f"{job.vehicle_id}: PATCH answered {r.status}: {await r.text()}")
        res.retries += 1
        await asyncio.sleep(min(1.0, 0.02 * (attempt + 1)))
        h = await _request(http, res, "HEAD", base + location, headers=hdrs)
        if h.status == 200 and h.headers.get("X-Avdata-Status") == "complete":
            return tuple(h.headers["X-Avdata-Segments"].split(","))
        offset = int(h.headers.get("Upload-Offset", offset))
    raise RuntimeError(f"{job.vehicle_id}: gave up on {location}")


async def run_fleet(bases: list[str], jobs: list[Job], concurrency: int, chunk: int = 32 * 1024) -> FleetResult:
    """Run every job, at most ``concurrency`` at once, over keep-alive connections."""
    res = FleetResult()
    gate = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency * 2)

    async def one(job: Job) -> None:
        async with gate:
            res._in_flight += 1
            res.in_flight_max = max(res.in_flight_max, res._in_flight)
            try:
                res.segments[job.path] = await upload(http, bases, job, res, chunk)
            finally:
                res._in_flight -= 1

    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(one(j) for j in jobs))
    return res
