"""``avdata-cloud enrich`` as a real process over really ingested segments, on both metadata back-ends:
announcement in the outbox → rows in the DB and documents in processed/; nothing twice (a second run,
a SIGKILL mid-run, a document already written by a dead attempt); a new version beside the old one;
sd_notify READY/WATCHDOG/STOPPING on a real socket; bad inputs counted by reason on /metrics while the
service goes on; NATS JetStream through the relay; a changed setting refused under an old version."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import numpy as np
import pytest
import requests

from cloud_ingest.config import CloudConfig
from cloud_ingest.processing.keys import calibrated_key
from cloud_ingest.queue.relay import Relay, ensure_stream
from downstream.cli import main
from downstream.enrich.outputs import output_key, read_output, write_output
from downstream.enrich.reader import SegmentReader
from downstream.enrich.service import EnrichmentService, EnrichSettings
from downstream.enrich.store import get_enrichment
from tests.cloud_ingest.conftest import metric
from tests.cloud_ingest.queue.helpers import needs_nats, relay_config
from tests.downstream.enrich.service_env import Notify, World, make_world, run, start

pytestmark = pytest.mark.slow


@pytest.fixture
def world(cloud_config: CloudConfig, tmp_path: Path) -> Iterator[World]:
    w = make_world(cloud_config, tmp_path / "work")
    yield w
    w.db.close()


def check_row_equals_document(w: World, segment_id: str, version: int = 1) -> None:
    row = get_enrichment(w.db, segment_id, version)
    assert row is not None, f"no v{version} row for {segment_id}"
    doc = read_output(w.store, row.output_key)
    assert row.output_key.endswith(f"/enrichment/v{version}.json") and doc.enricher_version == version
    assert doc.visual_embedding is not None and row.visual_embedding is not None
    assert np.array_equal(row.visual_embedding, doc.visual_embedding) and row.visual_embedding.shape == (512,)
    assert doc.bev_embedding is not None and row.bev_embedding is not None
    assert np.array_equal(row.bev_embedding, doc.bev_embedding) and row.bev_embedding.shape == (256,)
    assert row.description == doc.description and row.enriched_ns == doc.enriched_ns
    assert {(t.name, t.value, t.source.value, t.confidence) for t in doc.tags} == set(row.tags)


def test_until_idle_enriches_each_segment_once_and_a_new_version_keeps_the_old(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    on_map, off_map = world.add(1)[0], world.add(1, on_map=False, first=1)[0]
    args = world.toml()
    notify = Notify(tmp_path / "notify.sock")
    try:
        rc, _, err = run(["run", *args, "--until-idle"], notify)
        assert rc == 0, err
        assert "READY=1" in notify.wait("READY=1") and notify.wait("STOPPING=1")
    finally:
        notify.close()
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logs[-1]["msg"] == "stopped" and logs[-1]["enriched"] == 2 and logs[-1]["failed"] == 0

    for seg in (on_map, off_map):
        check_row_equals_document(world, seg.segment_id)
    near, far = get_enrichment(world.db, on_map.segment_id), get_enrichment(world.db, off_map.segment_id)
    assert near is not None and far is not None
    assert near.map_covered and near.map_summary["source"] == "lanelet2"
    assert not far.map_covered and far.map_summary["source"] == "gnss_box"  # marked as no map
    assert ("road_type", "urban", "map", 0.8) in near.tags and near.description.startswith("day, urban road")
    assert all(src in {"solar", "image", "map", "speed_profile", "detections", "vehicle_state", "trigger", "ood"}
               for _, _, src, _ in near.tags)
    assert world.inbox("enrich-v1") == 2

    # again: nothing new is written anywhere
    before, rows = world.enrichment_keys(), world.rows()
    rc, _, err = run(["run", *args, "--until-idle"])
    assert rc == 0, err
    assert world.enrichment_keys() == before and world.rows() == rows and world.inbox("enrich-v1") == 2
    rc, out, _ = run(["run", *args, "--segment", on_map.segment_id])
    assert rc == 0 and out.strip() == f"{on_map.segment_id}\texists"

    # a new enricher version: v2 beside v1, v1 untouched, the latest view moves to v2
    v1_bytes = {k: world.store.read_bytes(k) for k in before}
    rc, _, err = run(["run", *args, "--until-idle", "--enricher-version", "2"])
    assert rc == 0, err
    after = world.enrichment_keys()
    assert len(after) == 4 and {k: after[k] for k in before} == before
    assert all(world.store.read_bytes(k) == v for k, v in v1_bytes.items())
    for seg in (on_map, off_map):
        check_row_equals_document(world, seg.segment_id, 2)
        check_row_equals_document(world, seg.segment_id, 1)
    latest = get_enrichment(world.db, on_map.segment_id)
    assert latest is not None and latest.enricher_version == 2

    # show and status, as a person reads them
    cfg = ["--config", args[1], "--enrich-config", args[3]]
    assert main(["enrich", "show", on_map.segment_id, "--config", args[1], "--json", "--enricher-version", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["enricher_version"] == 1 and doc["visual_embedding_dim"] == 512 and doc["bev_embedding_dim"] == 256
    assert {"name": "lighting", "value": "day", "source": "solar", "confidence": 1.0} in doc["tags"]
    assert main(["enrich", "show", on_map.segment_id, "--config", args[1]]) == 0
    text = capsys.readouterr().out
    assert "v2" in text and "road_type:urban" in text and "lanelet2_mapping_example" in text
    assert main(["enrich", "status", *cfg, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["enriched"]) for v in st["versions"]] == [(1, 2), (2, 2)]
    assert st["live_segments"] == 2 and st["outbox_backlog"] == {"enrich-v1": 0}
    assert main(["enrich", "show", "no-such-segment", "--config", args[1]]) == 1


def test_a_document_written_by_a_dead_attempt_is_what_the_db_records(world: World) -> None:
    """The crash window between the write-once document and the commit: the next attempt keeps the
    stored document (the store refuses another) and commits rows made from it, so they agree."""
    (seg,) = world.add(1)
    args = world.toml()
    res = EnrichmentService(EnrichSettings(fingerprint="earlier")).enrich(SegmentReader(world.store).read(seg),
                                                                           now_ns=12345)
    write_output(world.store, res)
    rc, _, err = run(["run", *args, "--until-idle"])
    assert rc == 0, err
    row = get_enrichment(world.db, seg.segment_id, 1)
    assert row is not None and row.enriched_ns == 12345 and row.fingerprint == "earlier"
    check_row_equals_document(world, seg.segment_id)


def test_killed_mid_run_then_restarted_applies_each_segment_once(world: World) -> None:
    segs = world.add(5)
    args = world.toml()
    proc = start(["run", *args])
    try:
        deadline = time.monotonic() + 120
        while world.rows() < 1:
            assert time.monotonic() < deadline and proc.poll() is None, "no segment enriched"
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    at_kill = (world.rows(), len(world.enrichment_keys()), world.inbox("enrich-v1"))
    assert at_kill[0] < 5, "the kill should land before the last segment"
    rc, _, err = run(["run", *args, "--until-idle"])
    assert rc == 0, err
    print(f"at the kill: rows, documents, inbox = {at_kill}")
    assert world.rows() == 5 and world.inbox("enrich-v1") == 5 and len(world.enrichment_keys()) == 5
    for seg in segs:
        check_row_equals_document(world, seg.segment_id)


def test_bad_inputs_are_counted_by_reason_and_the_service_goes_on(world: World, tmp_path: Path) -> None:
    good, corrupt, unprocessed = world.add(3)
    raw = world.store.path(corrupt.camera_frames[0].object_key)
    raw.chmod(0o644)
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 3])  # the raw snapshot cut short
    cal = world.store.path(calibrated_key(unprocessed.segment_id, unprocessed.start_ns))
    kept = cal.read_bytes()
    cal.unlink()  # its processed output never written
    args = world.toml(processed_wait_s=0.5)
    notify = Notify(tmp_path / "n.sock")
    proc = start(["run", *args], notify, watchdog_usec=400_000)
    try:
        ready = notify.wait("READY=1")
        port = int(ready.split("metrics on ")[1].split(":")[1].split(",")[0])
        deadline = time.monotonic() + 120
        while True:
            with world.db.transaction() as tx:
                failed = tx.run("SELECT segment_id, reason FROM enrichment_failures ORDER BY reason")
            if world.rows() == 1 and len(failed) == 2:
                break
            assert time.monotonic() < deadline and proc.poll() is None, f"stuck: {failed}"
            time.sleep(0.05)
        assert sorted(failed) == sorted([(corrupt.segment_id, "snapshot_unreadable"),
                                         (unprocessed.segment_id, "processed_missing")])
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert metric(text, "avdata_enrich_failures_total", reason="snapshot_unreadable") == 1
        assert metric(text, "avdata_enrich_failures_total", reason="processed_missing") == 1
        assert metric(text, "avdata_enrich_segments_total", outcome="enriched") == 1
        assert metric(text, "avdata_enrich_segments_total", outcome="failed") == 2
        assert metric(text, "avdata_enrich_outputs_written_total") == 1
        notify.wait("WATCHDOG=1", 10)
        proc.send_signal(signal.SIGTERM)
        notify.wait("STOPPING=1", 20)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    check_row_equals_document(world, good.segment_id)
    # once the processed output exists, the failed ones are tried again by hand: one recovers
    cal.write_bytes(kept)
    rc, out, err = run(["run", *args, "--failed", "--json"])
    outcomes = json.loads(out)
    assert rc == 1, err  # one is still broken
    assert outcomes == {corrupt.segment_id: "failed:snapshot_unreadable", unprocessed.segment_id: "enriched"}
    check_row_equals_document(world, unprocessed.segment_id)


def test_a_changed_setting_under_an_old_version_is_refused(world: World) -> None:
    world.add(1)
    rc, _, err = run(["run", *world.toml(), "--until-idle"])
    assert rc == 0, err
    rc, _, err = run(["run", *world.toml(map_radius_m=80.0), "--until-idle"])
    assert rc == 2 and "version 1 was run with other settings" in err and "[enrich] version" in err
    rc, _, err = run(["run", *world.toml(map_radius_m=80.0, version=2), "--until-idle"])
    assert rc == 0, err


@needs_nats
def test_the_nats_backend_through_the_relay(world: World) -> None:
    (seg,) = world.add(1)
    cfg = relay_config()

    async def relay() -> int:
        nc = await nats.connect(cfg.nats_url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, cfg)
            return await Relay(world.db, js, cfg).run_once()
        finally:
            await nc.close()

    async def drop() -> None:
        nc = await nats.connect(cfg.nats_url)
        await nc.jetstream().delete_stream(cfg.stream)
        await nc.close()

    assert asyncio.run(relay()) == 1
    try:
        consumer = f"e{uuid.uuid4().hex[:6]}"
        args = world.toml(relay=cfg, queue="nats", consumer=consumer)
        rc, _, err = run(["run", *args, "--until-idle"])
        assert rc == 0, err
        assert world.inbox(f"{consumer}-v1") == 1 and world.rows() == 1
        check_row_equals_document(world, seg.segment_id)
        assert world.store.exists(output_key(seg.segment_id, seg.start_ns, 1))
        rc, _, err = run(["run", *args, "--until-idle"])  # the durable consumer has nothing new
        assert rc == 0 and world.rows() == 1 and world.inbox(f"{consumer}-v1") == 1
    finally:
        asyncio.run(drop())
