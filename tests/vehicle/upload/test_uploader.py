"""The tus client against a real aiohttp tus server on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from shared.messages import SensorMessage
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from tests.vehicle.tus_server import TusState, make_app
from vehicle.config.tree import UploaderConfig
from vehicle.metrics import VehicleMetrics
from vehicle.snapshot.writer import SnapshotMeta, WrittenSnapshot, write_snapshot
from vehicle.triggers.windows import PendingWindow
from vehicle.upload.queue import UploadQueue
from vehicle.upload.uploader import TusUploader

NS = 1_000_000_000
CHUNK = 32 * 1024


def make_snapshot(directory: Path, payload_bytes: int = 200_000, t0: int = 1_700_000_000 * NS,
                  priority: int = 80) -> WrittenSnapshot:
    """A real MCAP snapshot of incompressible LiDAR-sized payloads."""
    ev = TriggerEvent(TriggerKind.HARD_BRAKE, t0, t0 - NS, t0 + NS, priority, TriggerSource.RULE, "hb")
    msgs = [(t0 + i * NS // 10, SensorMessage("lidar/top", "lidar", t0 + i * NS // 10, 0, i, "lidar_points_v1",
                                              os.urandom(payload_bytes // 10))) for i in range(10)]
    return write_snapshot(directory, PendingWindow(ev.start_ns, ev.end_ns, (ev,)), {"lidar/top": msgs},
                          SnapshotMeta("car-1", "0.1.0"))


@dataclass
class Env:
    state: TusState
    url: str
    queue: UploadQueue
    metrics: VehicleMetrics
    snap: WrittenSnapshot
    session: aiohttp.ClientSession

    def uploader(self, token: str = "tok-1", **cfg: float) -> TusUploader:
        c = UploaderConfig(url=self.url, token=token, chunk_bytes=CHUNK, backoff_initial_s=0.01,
                           backoff_max_s=0.05, **cfg)  # type: ignore[arg-type]
        return TusUploader(self.session, c, "car-1", self.queue, self.metrics)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    state = TusState(tokens={"car-1": "tok-1"})
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    queue = UploadQueue(tmp_path / "q.sqlite3", tmp_path / "snaps", 10**9)
    snap = make_snapshot(tmp_path / "snaps")
    queue.enqueue(snap)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield Env(state, f"http://127.0.0.1:{port}/files/", queue, VehicleMetrics(), snap, session)
    queue.close()
    await runner.cleanup()


async def test_delivers_in_chunks_and_deletes_the_file(env: Env) -> None:
    data = env.snap.path.read_bytes()
    entry = env.queue.entries()[0]
    result = await env.uploader().deliver(entry)
    assert result is not None and result.segments == ("seg-a", "seg-b") and not result.duplicate
    assert env.state.stored[("car-1", env.snap.manifest.sha256)] == data
    assert env.state.patches == -(-len(data) // CHUNK)
    done = env.queue.get(entry.snapshot_id)
    assert done is not None and (done.state, done.segments) == ("done", "seg-a,seg-b")
    assert not env.snap.path.exists()
    assert env.metrics.value("avdata_vehicle_upload_bytes_sent_total") == len(data)


async def test_resumes_after_the_link_is_cut_resending_at_most_one_chunk(env: Env) -> None:
    size = env.snap.manifest.size_bytes
    env.state.cut_after_bytes = [CHUNK * 2 + 5000, CHUNK * 4 + 100]
    result = await env.uploader().upload(env.snap.manifest.snapshot_id)
    assert not result.duplicate
    assert env.state.stored[("car-1", env.snap.manifest.sha256)] == env.snap.path.read_bytes()
    assert env.state.posts == 1, "resumed the same upload via HEAD"
    resent = env.state.patch_bytes_received - size
    assert 0 <= resent <= 2 * CHUNK, "at most one chunk re-sent per cut"
    assert env.metrics.value("avdata_vehicle_upload_retries_total", {"cause": "RetryableUploadError"}) == 2


async def test_a_link_that_drops_often_still_delivers_when_each_cut_follows_progress(env: Env) -> None:
    """Backoff and the attempt limit count failures since the last confirmed progress: four cuts,
    each after at least one more chunk got through, deliver with max_attempts=3 (a limit on all
    attempts of the upload would have given up after the third cut)."""
    env.state.cut_after_bytes = [int(CHUNK * 1.5) * k for k in range(1, 5)]
    result = await env.uploader(max_attempts=3).upload(env.snap.manifest.snapshot_id)
    assert not result.duplicate
    assert env.state.stored[("car-1", env.snap.manifest.sha256)] == env.snap.path.read_bytes()
    assert env.metrics.value("avdata_vehicle_upload_retries_total", {"cause": "RetryableUploadError"}) == 4


async def test_no_progress_gives_up_after_max_attempts(env: Env) -> None:
    """A server that answers 503 to every PATCH: progress never comes, so max_attempts ends it."""
    env.state.fail_statuses = [503] * 10
    entry = env.queue.entries()[0]
    assert await env.uploader(max_attempts=3).deliver(entry) is None  # deferred to a later round
    assert env.state.patches == 3
    saved = env.queue.get(entry.snapshot_id)
    assert saved is not None and saved.state != "done"


async def test_restart_resumes_from_the_persisted_upload_url(env: Env) -> None:
    env.state.cut_after_bytes = [CHUNK * 3 + 10]
    first = env.uploader(max_attempts=1)
    entry = env.queue.entries()[0]
    assert await first.deliver(entry) is None  # deferred, not failed
    saved = env.queue.get(entry.snapshot_id)
    assert saved is not None and saved.state == "uploading" and saved.offset_bytes == 3 * CHUNK
    assert saved.upload_url.startswith(env.url)
    second = env.uploader()  # a fresh uploader, as after a process restart
    assert await second.deliver(saved) is not None
    assert env.state.posts == 1
    assert env.state.patch_bytes_received - env.snap.manifest.size_bytes <= CHUNK


async def test_duplicate_answer_sends_no_payload(env: Env) -> None:
    env.state.stored[("car-1", env.snap.manifest.sha256)] = b"already here"
    result = await env.uploader().deliver(env.queue.entries()[0])
    assert result is not None and result.duplicate
    assert env.state.patches == 0 and env.state.patch_bytes_received == 0
    assert env.queue.entries()[0].state == "done"


async def test_5xx_is_retried_with_backoff(env: Env) -> None:
    env.state.fail_statuses = [503, 502]
    assert await env.uploader().deliver(env.queue.entries()[0]) is not None
    assert env.metrics.value("avdata_vehicle_upload_retries_total", {"cause": "RetryableUploadError"}) == 2


async def test_checksum_mismatch_starts_a_new_upload(env: Env) -> None:
    env.state.corrupt_next_final = 1
    assert await env.uploader().deliver(env.queue.entries()[0]) is not None
    assert env.state.posts == 2
    assert ("car-1", env.snap.manifest.sha256) in env.state.stored


async def test_quarantine_is_a_permanent_failure(env: Env) -> None:
    env.state.quarantine = True
    entry = env.queue.entries()[0]
    assert await env.uploader().deliver(entry) is None
    failed = env.queue.get(entry.snapshot_id)
    assert failed is not None and (failed.state, failed.reason) == ("failed", "422 mcap_crc")
    assert env.queue.next_ready(time.time_ns()) is None, "not retried"
    assert env.state.posts == 1


async def test_wrong_token_is_a_permanent_failure(env: Env) -> None:
    entry = env.queue.entries()[0]
    assert await env.uploader(token="forged").deliver(entry) is None
    failed = env.queue.get(entry.snapshot_id)
    assert failed is not None and failed.state == "failed" and failed.reason.startswith("401")
    assert env.metrics.value("avdata_vehicle_uploads_total", {"result": "failed"}) == 1


async def test_unreachable_cloud_defers_without_failing(env: Env) -> None:
    entry = env.queue.entries()[0]
    c = UploaderConfig(url="http://127.0.0.1:9/files/", token="tok-1", max_attempts=2,
                       backoff_initial_s=0.01, backoff_max_s=0.02)
    up = TusUploader(env.session, c, "car-1", env.queue, env.metrics)
    assert await up.deliver(entry) is None
    later = env.queue.get(entry.snapshot_id)
    assert later is not None and later.state == "pending" and later.attempts == 1
    assert later.retry_at_ns > time.time_ns()


async def test_bandwidth_cap_paces_the_upload(env: Env) -> None:
    size = env.snap.manifest.size_bytes
    rate = size * 2  # the whole file should take about half a second
    started = time.monotonic()
    assert await env.uploader(max_bytes_per_s=rate).deliver(env.queue.entries()[0]) is not None
    assert time.monotonic() - started >= 0.8 * (size - CHUNK) / rate
