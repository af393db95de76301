"""Daemon-level behaviour over real HTTP: two daemons on one DB, leases, rate limit, expiry, metrics."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import requests
from tusclient import client as tus_client

from cloud_ingest import auth
from cloud_ingest.config import CloudConfig, Limits
from tests.cloud_ingest.conftest import ServerThread, headers, metric, open_config_db, operator_headers


def _tus(base: str, token: str, path: Path, sha: str, **kw: object):
    c = tus_client.TusClient(base + "/files/", headers={"X-Avdata-Vehicle": "car-1",
                                                       "Authorization": f"Bearer {token}"})
    return c.uploader(str(path), chunk_size=32 * 1024, metadata={"sha256": sha}, **kw)


def _register(cfg: CloudConfig) -> str:
    db = open_config_db(cfg)
    try:
        return auth.register(db, "car-1")
    finally:
        db.close()


def test_two_daemons_resume_each_others_upload(cloud_config: CloudConfig, snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    size = path.stat().st_size
    a, b = ServerThread(cloud_config), ServerThread(cloud_config)
    try:
        token = _register(cloud_config)
        first = _tus(a.url, token, path, sha)
        first.upload(stop_at=size // 3)
        location = first.url.removeprefix(a.url)
        second = _tus(b.url, token, path, sha, url=b.url + location)
        assert second.offset == first.offset
        second.upload(stop_at=2 * size // 3)
        third = _tus(a.url, token, path, sha, url=a.url + location)  # A's cached hash is stale now
        third.upload()
        assert third.request.status_code == 204
        sid = third.request.response_headers["x-avdata-segments"]
        op = operator_headers(cloud_config)
        assert requests.get(b.url + f"/segments/{sid}").status_code == 401  # reading needs an operator token
        assert requests.get(b.url + f"/segments/{sid}", headers=headers("car-1", token)).status_code == 401
        assert requests.get(b.url + f"/segments/{sid}", headers=op).json()["snapshot_sha256"] == sha
        db = open_config_db(cloud_config)
        try:
            rec = db.get_upload(location.rsplit("/", 1)[1])
        finally:
            db.close()
        assert rec is not None and rec.status == "complete" and rec.bytes_received == size
    finally:
        a.stop()
        b.stop()


def test_a_live_lease_gives_409_locked_and_a_dead_daemons_lease_expires(tmp_path: Path,
                                                                 snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    cfg = CloudConfig(data_dir=tmp_path / "c", limits=Limits(lock_lease_s=0.3))
    srv = ServerThread(cfg)
    try:
        token = _register(cfg)
        up = _tus(srv.url, token, path, sha)
        up.upload(stop_at=32 * 1024)
        upload_id = up.url.rsplit("/", 1)[1]
        db = open_config_db(cfg)
        try:
            db.claim_upload(upload_id, "a-daemon-that-died", time.time_ns(), int(0.3e9))
        finally:
            db.close()
        hdrs = {**headers("car-1", token), "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(32 * 1024)}
        r = requests.patch(up.url, data=b"x", headers=hdrs)
        assert r.status_code == 409 and r.json()["error"] == "locked" and r.headers["Retry-After"] == "1"
        time.sleep(0.35)
        up2 = _tus(srv.url, token, path, sha, url=up.url)
        up2.upload()
        assert up2.request.status_code == 204
    finally:
        srv.stop()


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    cfg = CloudConfig(data_dir=tmp_path / "c", limits=Limits(rate_per_s=0.5, rate_burst=3))
    srv = ServerThread(cfg)
    try:
        token = _register(cfg)
        url = srv.url + "/files/" + "0" * 32
        codes = [requests.head(url, headers=headers("car-1", token)).status_code for _ in range(5)]
        assert codes == [404, 404, 404, 429, 429]
        r = requests.head(url, headers=headers("car-1", token))
        assert int(r.headers["Retry-After"]) >= 1
        text = requests.get(srv.url + "/metrics").text
        assert metric(text, "avdata_cloud_rejected_total", reason="rate_limited") == 3
    finally:
        srv.stop()


def test_expired_uploads_are_swept(tmp_path: Path) -> None:
    cfg = CloudConfig(data_dir=tmp_path / "c", limits=Limits(upload_expiry_s=0.3, sweep_interval_s=0.1))
    srv = ServerThread(cfg)
    try:
        token = _register(cfg)
        meta = "sha256 " + base64.b64encode(b"a" * 64).decode()
        r = requests.post(srv.url + "/files/", headers={**headers("car-1", token), "Upload-Length": "100",
                                                       "Upload-Metadata": meta})
        url = srv.url + r.headers["Location"]
        assert requests.head(url, headers=headers("car-1", token)).status_code == 200
        assert len(list(cfg.uploads_dir.iterdir())) == 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and list(cfg.uploads_dir.iterdir()):
            time.sleep(0.05)
        assert not list(cfg.uploads_dir.iterdir())
        assert requests.head(url, headers=headers("car-1", token)).status_code == 404
        assert metric(requests.get(srv.url + "/metrics").text, "avdata_cloud_uploads_expired_total") == 1
    finally:
        srv.stop()


def test_creation_with_upload_and_metrics(tmp_path: Path, snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    cfg = CloudConfig(data_dir=tmp_path / "c")
    srv = ServerThread(cfg)
    try:
        token = _register(cfg)
        meta = "sha256 " + base64.b64encode(sha.encode()).decode()
        r = requests.post(srv.url + "/files/", data=data, headers={
            **headers("car-1", token), "Upload-Length": str(len(data)), "Upload-Metadata": meta,
            "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 201 and r.headers["Upload-Offset"] == str(len(data))
        assert r.headers["X-Avdata-Segments"] and r.headers["Location"].startswith("/files/")
        text = requests.get(srv.url + "/metrics").text
        assert metric(text, "avdata_cloud_bytes_received_total") == len(data)
        assert metric(text, "avdata_cloud_ingest_seconds_count") == 1
        assert metric(text, "avdata_cloud_requests_total", method="POST", status="201") == 1
        op = operator_headers(cfg)
        assert requests.get(srv.url + "/segments", params={"limit": "x"}, headers=op).status_code == 400
        assert requests.get(srv.url + "/segments", params={"cursor": "!!"}, headers=op).status_code == 400
        assert requests.get(srv.url + "/segments/nope", headers=op).status_code == 404
        assert metric(requests.get(srv.url + "/metrics").text, "avdata_cloud_rejected_total",
                      reason="bad_query") == 2
    finally:
        srv.stop()
