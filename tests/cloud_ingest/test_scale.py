"""Fleet scale: two daemon processes and the relay on one PostgreSQL + NATS + store; 200 vehicles
upload one or two small real snapshots at once, round robin, some moving daemon mid-upload."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import nats
import numpy as np
import pytest

from bench.loadgen import NS, Job, make_snapshot, run_fleet
from bench.loadgen_cluster import Cluster
from cloud_ingest import auth
from cloud_ingest.config import CloudConfig, DBConfig, RelayConfig
from cloud_ingest.queue.announce import Announcement
from cloud_ingest.storage.metadata.postgres import PostgresDB
from tests.cloud_ingest.conftest import KITTI_BIN, PG_DSN, T0_NS, pg_available
from tests.cloud_ingest.queue.helpers import NATS_URL, nats_unreachable
from tests.helpers import require

VEHICLES = 200


def lidar_payload() -> bytes:
    """300 returns of the real KITTI sweep as float32 x, y, z, intensity (a small real payload)."""
    return np.fromfile(KITTI_BIN, dtype="<f4").reshape(-1, 4)[::400][:300].tobytes()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_daemons_and_the_relay_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    for reason in (pg_available(), nats_unreachable()):
        require(reason)
    rng = random.Random(7)
    schema, tag = f"t_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex[:10]
    relay = RelayConfig(nats_url=NATS_URL, stream=f"T_{tag}", subject_prefix=f"t{tag}.raw")
    cfg = CloudConfig(data_dir=tmp_path / "cloud", db=DBConfig(backend="postgres", dsn=PG_DSN, schema=schema))
    config_path = tmp_path / "cloud.toml"
    config_path.write_text(
        f'data_dir = "{cfg.data_dir}"\n[limits]\nread_chunk_bytes = 65536\n'
        f'[db]\nbackend = "postgres"\ndsn = "{PG_DSN}"\nschema = "{schema}"\n'
        f'[relay]\nnats_url = "{NATS_URL}"\nstream = "{relay.stream}"\nsubject_prefix = "{relay.subject_prefix}"\n'
        'batch = 64\npoll_interval_s = 0.05\n')
    db = PostgresDB(PG_DSN, schema)
    db.migrate()
    payload = lidar_payload()
    jobs: list[Job] = []
    two: set[str] = set()
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    for v in range(VEHICLES):
        vid = f"veh-{v:03d}"
        token = auth.register(db, vid)
        n = 2 if v % 3 == 0 else 1
        if n == 2:
            two.add(vid)
        for k in range(n):  # the second snapshot starts 1 s after the first ends: they will be joined
            path = snaps / f"{vid}-{k}.mcap"
            sha = make_snapshot(path, vid, T0_NS + v * 100 * NS + k * 3 * NS, 2.0, payload)
            jobs.append(Job(vid, token, path, sha, first=len(jobs), switch=rng.random() < 0.25))
    rng.shuffle(jobs)
    try:
        with Cluster(config_path, daemons=2, relay=True) as cluster:
            t0 = time.perf_counter()
            result = asyncio.run(run_fleet(cluster.bases, jobs, concurrency=64, chunk=8 * 1024))
            elapsed = time.perf_counter() - t0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with db.transaction() as tx:
                    if tx.run("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL")[0][0] == 0:
                        break
                time.sleep(0.1)
            codes = cluster.stop()
        announced = asyncio.run(_drain(relay))
        # DB: every snapshot's segment exactly once, each two-snapshot vehicle joined once
        assert len(result.segments) == len(jobs) and all(len(s) == 1 for s in result.segments.values())
        leaves = [s[0] for s in result.segments.values()]
        with db.transaction() as tx:
            rows = tx.run("SELECT segment_id, vehicle_id, superseded_by FROM segments")
            outbox = [r[0] for r in tx.run("SELECT segment_id FROM outbox")]
        assert len(rows) == len({r[0] for r in rows}) == len(jobs) + len(two)
        assert {r[0] for r in rows} >= set(leaves)
        live = Counter(r[1] for r in rows if not r[2])
        assert set(live) == {f"veh-{v:03d}" for v in range(VEHICLES)} and set(live.values()) == {1}
        # queue: every announcement once (by segment id and by message id), the DB outbox exactly
        assert sorted(a.segment_id for a in announced.values()) == sorted(outbox)
        assert len(outbox) == len(set(outbox)) == VEHICLES + len(two)  # a pair: first leaf, then the join
        final = {a.vehicle_id: a for a in announced.values() if a.supersedes}
        assert set(final) == two and all(len(a.supersedes) == 2 for a in final.values())
        assert codes == [0, 0, 0]
        assert sum(j.switch for j in jobs) > 40 and len(result.latencies_s) >= 3 * len(jobs)
        print(f"\n{len(jobs)} uploads by {VEHICLES} vehicles in {elapsed:.1f} s; {len(result.latencies_s)} "
              f"requests, p50 {result.p(50) * 1e3:.1f} ms, p99 {result.p(99) * 1e3:.1f} ms, "
              f"{result.in_flight_max} uploads in flight, {result.retries} retries")
    finally:
        db.drop_schema()
        db.close()


async def _drain(relay: RelayConfig) -> dict[str, Announcement]:
    """Every message in the stream, keyed by Nats-Msg-Id (a repeated id would fail the test); then
    the stream is deleted."""
    nc = await nats.connect(relay.nats_url)
    js = nc.jetstream()
    try:
        sub = await js.pull_subscribe(relay.subject_prefix + ".>", stream=relay.stream)
        out: dict[str, Announcement] = {}
        total = (await js.stream_info(relay.stream)).state.messages
        while len(out) < total:
            for msg in await sub.fetch(500, timeout=5):
                mid = (msg.headers or {})["Nats-Msg-Id"]
                assert mid not in out, f"message id {mid} delivered twice"
                out[mid] = Announcement.decode(msg.data)
                await msg.ack()
        return out
    finally:
        await js.delete_stream(relay.stream)
        await nc.close()
