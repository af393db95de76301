"""A real consumer process on real NATS JetStream, killed with SIGKILL mid-batch and restarted,
applies every segment exactly once: its effect (a count in its database) and its inbox row commit
together, and what it applied but had not acknowledged comes again and is skipped. Both back-ends."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from cloud_ingest.config import CloudConfig
from cloud_ingest.queue.relay import Relay, ensure_stream
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from tests.cloud_ingest.conftest import open_config_db
from tests.cloud_ingest.queue.helpers import (
    NATS_URL,
    REPO,
    applied_counts,
    fill_outbox,
    make_effects_table,
    needs_nats,
    relay_config,
)

N = 300
BATCH = 40
ACK_WAIT_S = 2.0


@pytest.fixture
async def js() -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(NATS_URL)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    yield d
    d.close()


def _inbox_size(db: SQLMetadataDB, name: str) -> int:
    with db.transaction() as tx:
        return int(tx.run("SELECT COUNT(*) FROM consumer_inbox WHERE consumer = ?", (name,))[0][0])


async def _until_applied(db: SQLMetadataDB, at_least: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(await asyncio.to_thread(applied_counts, db)) >= at_least:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{at_least} segments not applied in {timeout_s} s")


@needs_nats
async def test_consumer_killed_mid_batch_applies_every_segment_exactly_once(
        db: SQLMetadataDB, cloud_config: CloudConfig, js: JetStreamContext, tmp_path: Path) -> None:
    cfg = relay_config()
    ids = fill_outbox(db, N)
    await ensure_stream(js, cfg)
    relay = Relay(db, js, cfg)
    while await relay.run_once():
        pass
    make_effects_table(db)
    name, durable = "enrichment", f"c{uuid.uuid4().hex[:8]}"
    settings = tmp_path / "consumer.json"
    stats = tmp_path / "stats.json"
    settings.write_text(json.dumps({
        "backend": cloud_config.db.backend, "sqlite_path": str(cloud_config.sqlite_path), "dsn": cloud_config.db.dsn,
        "schema": cloud_config.db.schema, "nats_url": cfg.nats_url, "stream": cfg.stream,
        "subject_prefix": cfg.subject_prefix, "durable": durable, "ack_wait_s": ACK_WAIT_S, "name": name,
        "batch": BATCH, "delay_s": 0.004, "stats_path": str(stats)}))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tests.cloud_ingest.queue.consumer_process", str(settings)],
                                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def applied() -> int:
        return len(applied_counts(db))

    proc = start()
    caught: list[int] = []  # per kill: segments applied and committed but not yet acknowledged
    try:
        for _ in range(3):
            target = applied() + random.randint(15, 60)
            await _until_applied(db, target, 60)
            await asyncio.sleep(random.uniform(0.0, 0.03))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
            info = await js.consumer_info(cfg.stream, durable)
            acked = info.delivered.stream_seq - (info.num_ack_pending or 0)  # the stream holds seqs 1..N in order
            caught.append(_inbox_size(db, name) - acked)
            assert max(applied_counts(db).values()) == 1
            proc = start()

        async def settled() -> bool:
            info = await js.consumer_info(cfg.stream, durable)
            return applied() == N and not info.num_pending and not info.num_ack_pending

        deadline = time.monotonic() + 60
        while not await settled():  # every message acknowledged, the re-deliveries among them
            assert time.monotonic() < deadline, "the restarted consumer did not finish"
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read().decode() if proc.stderr else ""
        print(f"applied but unacknowledged at each kill: {caught}; final run: {stats.read_text()}")
        assert sum(caught) > 0, "no kill landed between an effect's commit and its ack"
        assert applied_counts(db) == dict.fromkeys(ids, 1), "every segment applied exactly once, none missing"
        assert _inbox_size(db, name) == N
        # the last kill's applied-but-unacknowledged deliveries came back to the last run: skipped
        assert json.loads(stats.read_text())["duplicates"] >= caught[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await js.delete_stream(cfg.stream)
