"""What a crash leaves half done is finished: processed outputs rewritten from the DB, an upload that
holds all its bytes completed by HEAD or the repair pass, orphan files removed, and a restarted
daemon taking over its predecessor's leases at once."""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import requests

from cloud_ingest.processing import complete as processed
from cloud_ingest.services import SERVICES
from cloud_ingest.storage.metadata.protocol import COMPLETE, IN_PROGRESS
from cloud_ingest.sweeper import repair_once
from cloud_ingest.tus.owner import claim_owner
from tests.cloud_ingest.conftest import ServerThread, headers, metric, open_config_db
from tests.cloud_ingest.segments.test_join import Env, env, snaps  # noqa: F401 - fixtures


def test_processed_outputs_lost_after_the_commit_are_rewritten_identically(
        env: Env, snaps: dict[str, tuple[Path, str]]) -> None:  # noqa: F811 - the fixtures above
    for k in "ABC":  # A, B, AB (joined), C, ABC (joined again): leaves, joins and superseded markers
        env.ingest(snaps[k])
    assert env.db.unprocessed_segments(time.time_ns() + 1, 100) == []  # the ingest marked them all
    before = {k: env.store.read_bytes(k) for k in env.store.list("processed/2023-11-14")}
    assert sum(k.endswith("superseded.json") for k in before) == 4  # A, B (by AB); AB, C (by ABC)
    # the daemon died between the commit and the outputs: none written, none marked
    shutil.rmtree(env.store.root / "processed")
    with env.db.transaction() as tx:
        tx.run("UPDATE segments SET processed_ns = NULL")
    todo = [r.segment_id for r in env.db.unprocessed_segments(time.time_ns() + 1, 100)]
    assert len(todo) == 5
    assert env.db.unprocessed_segments(0, 100) == []  # the grace window hides fresh commits
    assert sorted(processed.complete_segments(env.db, env.store, todo)) == sorted(todo)
    after = {k: env.store.read_bytes(k) for k in env.store.list("processed/2023-11-14")}
    assert after == before  # byte for byte what the ingest itself wrote
    assert env.db.unprocessed_segments(time.time_ns() + 1, 100) == []
    assert processed.complete_segments(env.db, env.store, todo) == todo  # again: a no-op, no error


def _post(server: ServerThread, hdrs: dict[str, str], size: int, sha: str) -> str:
    meta = f"sha256 {base64.b64encode(sha.encode()).decode()}"
    r = requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": str(size), "Upload-Metadata": meta})
    assert r.status_code == 201
    return server.url + r.headers["Location"]


def test_head_never_reports_an_unstored_upload_as_done_and_completes_it(
        server: ServerThread, tokens: dict[str, str], snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    hdrs = headers("car-1", tokens["car-1"])
    blocker = server.config.store_dir / "raw"
    blocker.write_bytes(b"")  # the store cannot create raw/...: the ingest fails after the last byte
    url = _post(server, hdrs, len(data), sha)
    r = requests.patch(url, data=data, headers={**hdrs, "Upload-Offset": "0",
                                                "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 500 and r.json()["error"] == "internal"
    db = open_config_db(server.config)
    try:
        rec = db.get_upload(url.rsplit("/", 1)[1])
        assert rec is not None and rec.status == IN_PROGRESS and rec.offset_bytes == len(data)
        assert rec.lock_owner == ""  # the lease was given back
        assert [r.upload_id for r in db.stalled_uploads(10)] == [rec.upload_id]
        head = requests.head(url, headers=hdrs)
        assert head.status_code == 500  # still failing: never "200, offset == length" while unstored
        blocker.unlink()
        head = requests.head(url, headers=hdrs)  # HEAD completes it now
        assert head.status_code == 200 and head.headers["X-Avdata-Status"] == COMPLETE
        segments = head.headers["X-Avdata-Segments"].split(",")
        assert db.segment_ids_for_sha("car-1", sha) == segments
        assert [o.segment_id for o in db.read_outbox(0, 10)] == segments
        assert db.stalled_uploads(10) == []
    finally:
        db.close()
    assert not list(server.config.uploads_dir.glob("*.part"))


def test_repair_pass_completes_stalled_uploads_and_removes_orphans(
        server: ServerThread, tokens: dict[str, str], snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    hdrs = headers("car-1", tokens["car-1"])
    blocker = server.config.store_dir / "raw"
    blocker.write_bytes(b"")
    url = _post(server, hdrs, len(data), sha)
    assert requests.patch(url, data=data, headers={**hdrs, "Upload-Offset": "0", "Content-Type":
                                                   "application/offset+octet-stream"}).status_code == 500
    blocker.unlink()
    upload_id = url.rsplit("/", 1)[1]
    orphan = server.config.uploads_dir / ("f" * 32 + ".part")  # a file whose upload never got a row
    orphan.write_bytes(b"x")
    svc = server.app[SERVICES]
    done = server._call(repair_once(svc))
    assert done["stalled_upload"] == 1 and done["orphan_file"] == 0  # too young: may be a POST under way
    db = open_config_db(server.config)
    try:
        rec = db.get_upload(upload_id)
        assert rec is not None and rec.status == COMPLETE and rec.segment_ids
        stale = server.config.uploads_dir / (upload_id + ".part")  # e.g. died between commit and unlink
        stale.write_bytes(data)
        old = time.time() - 3 * svc.config.limits.lock_lease_s
        os.utime(orphan, (old, old))
        done = server._call(repair_once(svc))
        assert done["orphan_file"] == 2 and not stale.exists() and not orphan.exists()
    finally:
        db.close()
    text = requests.get(server.url + "/metrics").text
    assert metric(text, "avdata_cloud_repaired_total", kind="stalled_upload") == 1
    assert metric(text, "avdata_cloud_repaired_total", kind="orphan_file") == 2


def test_a_restarted_daemon_takes_its_predecessors_slot_and_leases(tmp_path: Path) -> None:
    a = claim_owner(tmp_path)
    b = claim_owner(tmp_path)  # a daemon running beside it: another name
    assert a.name != b.name and (a.slot, b.slot) == (0, 1)
    name = a.name
    a.close()  # the process died: the kernel dropped its lock
    c = claim_owner(tmp_path)
    assert (c.slot, c.name) == (0, name)
    b.close()
    c.close()
