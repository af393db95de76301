"""The tus endpoint over real HTTP on loopback, driven by the real ``tuspy`` client and raw requests."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from pathlib import Path

import pytest
import requests
from mcap.reader import make_reader
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from cloud_ingest.storage.objects.local import LocalObjectStore
from shared.snapshot import sha256_file
from tests.cloud_ingest.conftest import ServerThread, headers, metric, open_config_db, operator_headers


def tus_meta(path: Path, sha: str, filename: str | None = None) -> dict[str, str]:
    return {"filename": filename or path.name, "sha256": sha, "snapshot_id": "snap-x"}


def uploader(server: ServerThread, vehicle: str, token: str, path: Path, sha: str, **kw: object):
    c = tus_client.TusClient(server.url + "/files/", headers={"X-Avdata-Vehicle": vehicle,
                                                              "Authorization": f"Bearer {token}"})
    return c.uploader(str(path), chunk_size=kw.pop("chunk_size", 64 * 1024),
                      metadata=kw.pop("metadata", tus_meta(path, sha)), **kw)


def test_options_advertises_the_protocol(server: ServerThread) -> None:
    r = requests.options(server.url + "/files/")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) >= {"creation", "creation-with-upload", "termination",
                                                           "checksum", "expiration"}
    assert "sha1" in r.headers["Tus-Checksum-Algorithm"].split(",")
    assert int(r.headers["Tus-Max-Size"]) == server.config.limits.max_upload_bytes


def test_tuspy_upload_is_ingested_and_stored_raw(server: ServerThread, tokens: dict[str, str],
                                                 snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    up = uploader(server, "car-1", tokens["car-1"], path, sha, upload_checksum=True)
    up.upload()
    assert up.offset == path.stat().st_size
    segment_ids = up.request.response_headers["x-avdata-segments"].split(",")
    assert len(segment_ids) == 1
    db = open_config_db(server.config)
    try:
        row = db.get_segment(segment_ids[0])
        rec = db.get_upload(up.url.rsplit("/", 1)[1])
        outbox = db.read_outbox(0, 10)
    finally:
        db.close()
    assert row is not None and row.vehicle_id == "car-1" and row.snapshot_sha256 == sha
    assert rec is not None and rec.status == "complete" and rec.bytes_received == path.stat().st_size
    assert row.raw_key == f"raw/2023-11-14/car-1/{segment_ids[0]}/snapshot.mcap"
    store = LocalObjectStore(server.config.store_dir)
    assert sha256_file(store.path(row.raw_key)) == sha
    assert [o.segment_id for o in outbox] == segment_ids
    assert not list(server.config.uploads_dir.iterdir())  # nothing left behind in uploads/
    op = operator_headers(server.config)
    listed = requests.get(server.url + "/segments", params={"vehicle": "car-1"}, headers=op).json()
    assert [s["segment_id"] for s in listed["segments"]] == segment_ids and listed["next_cursor"] is None
    full = requests.get(server.url + f"/segments/{segment_ids[0]}", headers=op).json()
    topics = {s["topic"]: s["count"] for s in full["segment"]["camera_frames"] + full["segment"]["lidar_sweeps"]}
    assert topics == {"camera/front": 120, "lidar/top": 120}


def _cut_patch(server: ServerThread, location: str, hdrs: dict[str, str], body: bytes, send: int) -> None:
    """Send a PATCH announcing ``len(body)`` bytes, send only ``send`` of them, and drop the connection."""
    head = [f"PATCH {location} HTTP/1.1", f"Host: 127.0.0.1:{server.config.port}",
            f"Content-Length: {len(body)}", "Content-Type: application/offset+octet-stream", "Upload-Offset: 0"]
    head += [f"{k}: {v}" for k, v in hdrs.items()]
    with socket.create_connection(("127.0.0.1", server.config.port)) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:send])
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST


def test_tuspy_resumes_from_the_server_offset_after_a_cut(server: ServerThread, tokens: dict[str, str],
                                                          snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    hdrs = headers("car-1", tokens["car-1"])
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in tus_meta(path, sha).items())
    r = requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": str(len(data)),
                                                      "Upload-Metadata": meta})
    assert r.status_code == 201
    location = r.headers["Location"]
    sent = len(data) // 2 + 12345
    _cut_patch(server, location, hdrs, data, sent)
    deadline = time.monotonic() + 5
    offset = 0
    while time.monotonic() < deadline:
        offset = int(requests.head(server.url + location, headers=hdrs).headers["Upload-Offset"])
        if offset:
            break
        time.sleep(0.05)
    assert 0 < offset <= sent  # the bytes that arrived before the cut were kept
    up = uploader(server, "car-1", tokens["car-1"], path, sha, url=server.url + location)
    assert up.offset == offset  # tuspy asked the server (HEAD), it did not restart from 0
    up.upload()
    assert up.request.status_code == 204 and up.request.response_headers["x-avdata-segments"]
    db = open_config_db(server.config)
    try:
        rec = db.get_upload(location.rsplit("/", 1)[1])
    finally:
        db.close()
    assert rec is not None and rec.status == "complete"
    assert rec.bytes_received == len(data)  # every byte received exactly once in total


def test_protocol_errors(server: ServerThread, tokens: dict[str, str], snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    hdrs = headers("car-1", tokens["car-1"])
    meta = f"sha256 {base64.b64encode(sha.encode()).decode()}"
    no_version = {k: v for k, v in hdrs.items() if k != "Tus-Resumable"}
    assert requests.post(server.url + "/files/", headers={**no_version, "Upload-Length": "10"}).status_code == 412
    assert requests.post(server.url + "/files/", headers={**hdrs, "Tus-Resumable": "0.2.2",
                                                          "Upload-Length": "10"}).status_code == 412
    too_big = str(server.config.limits.max_upload_bytes + 1)
    assert requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": too_big,
                                                          "Upload-Metadata": meta}).status_code == 413
    assert requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": "10",
                                                          "Upload-Metadata": ""}).status_code == 400
    r = requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": str(len(data)),
                                                      "Upload-Metadata": meta})
    url = server.url + r.headers["Location"]
    assert "Upload-Expires" in r.headers
    patch = {**hdrs, "Content-Type": "application/offset+octet-stream"}
    assert requests.patch(url, data=data[:100], headers={**patch, "Upload-Offset": "5"}).status_code == 409
    assert requests.patch(url, data=data[:100], headers={**patch, "Content-Type": "text/plain",
                                                         "Upload-Offset": "0"}).status_code == 415
    bad = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    r = requests.patch(url, data=data[:100], headers={**patch, "Upload-Offset": "0",
                                                      "Upload-Checksum": f"sha1 {bad}"})
    assert r.status_code == 460
    assert requests.head(url, headers=hdrs).headers["Upload-Offset"] == "0"  # nothing of it was kept
    r = requests.patch(url, data=data[:100], headers={**patch, "Upload-Offset": "0",
                                                      "Upload-Checksum": "md5 AAAA"})
    assert r.status_code == 400
    good = base64.b64encode(hashlib.sha256(data[:100]).digest()).decode()
    r = requests.patch(url, data=data[:100], headers={**patch, "Upload-Offset": "0",
                                                      "Upload-Checksum": f"sha256 {good}"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "100"
    r = requests.patch(url, data=b"", headers={**patch, "Upload-Offset": "100"})  # tuspy's empty PATCH
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "100"
    head = requests.head(url, headers=hdrs)
    assert head.status_code == 200 and head.headers["Cache-Control"] == "no-store"
    assert head.headers["X-Avdata-Status"] == "in_progress"
    assert head.headers["Upload-Length"] == str(len(data))
    r = requests.patch(url, data=data[100:] + b"extra", headers={**patch, "Upload-Offset": "100"})
    assert r.status_code == 413
    assert requests.delete(url, headers=hdrs).status_code == 204
    assert requests.head(url, headers=hdrs).status_code == 404


def test_whole_file_hash_mismatch_is_460_and_discarded(server: ServerThread, tokens: dict[str, str],
                                                       snapshot: tuple[Path, str]) -> None:
    path, _ = snapshot
    up = uploader(server, "car-1", tokens["car-1"], path, "ab" * 32)
    with pytest.raises(TusUploadFailed) as info:
        up.upload()
    assert info.value.status_code == 460
    assert requests.head(up.url, headers=headers("car-1", tokens["car-1"])).status_code == 404
    assert not list(server.config.uploads_dir.iterdir())


def test_credentials_and_ownership(server: ServerThread, tokens: dict[str, str],
                                   snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    with pytest.raises(TusCommunicationError) as info:
        uploader(server, "car-1", tokens["car-2"], path, sha).upload()  # forged vehicle id
    assert info.value.status_code == 401
    with pytest.raises(TusCommunicationError) as info:
        uploader(server, "car-1", "not-a-token", path, sha).upload()
    assert info.value.status_code == 401
    r = requests.post(server.url + "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    up = uploader(server, "car-1", tokens["car-1"], path, sha)
    up.upload(stop_at=64 * 1024)
    other = headers("car-2", tokens["car-2"])
    assert requests.head(up.url, headers=other).status_code == 403
    r = requests.patch(up.url, data=b"x", headers={**other, "Content-Type": "application/offset+octet-stream",
                                                   "Upload-Offset": str(64 * 1024)})
    assert r.status_code == 403
    assert requests.get(up.url + "/status", headers=other).status_code == 403
    assert requests.delete(up.url, headers=other).status_code == 403
    assert requests.head(up.url, headers=headers("car-1", tokens["car-1"])).headers["Upload-Offset"] == \
        str(64 * 1024)


def test_path_tricks_in_metadata_do_not_steer_paths(server: ServerThread, tokens: dict[str, str],
                                                    snapshot: tuple[Path, str], tmp_path: Path) -> None:
    path, sha = snapshot
    evil = "../../../../escape/../snap.mcap"
    meta = {"filename": evil, "sha256": sha, "snapshot_id": "../../x"}
    up = uploader(server, "car-1", tokens["car-1"], path, sha, metadata=meta)
    up.upload()
    sid = up.request.response_headers["x-avdata-segments"]
    files = sorted(p.relative_to(server.config.data_dir).as_posix()
                   for p in server.config.data_dir.rglob("*") if p.is_file())
    assert f"store/raw/2023-11-14/car-1/{sid}/snapshot.mcap" in files
    assert not any("escape" in f or ".." in f for f in files)
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


def first_chunk_middle(path: Path) -> int:
    """The offset of a byte in the middle of the first chunk's compressed records."""
    with open(path, "rb") as fh:
        summary = make_reader(fh).get_summary()
    assert summary is not None
    ci = summary.chunk_indexes[0]
    return ci.chunk_start_offset + ci.chunk_length // 2


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_malformed_mcap_is_quarantined_with_a_reason(server: ServerThread, tokens: dict[str, str],
                                                     snapshot: tuple[Path, str], tmp_path: Path,
                                                     damage: str) -> None:
    path, _ = snapshot
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[first_chunk_middle(path)] ^= 0xFF  # inside lz4 chunk data: decompression or CRC fails
    else:
        del data[len(data) * 2 // 3:]
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(data))
    up = uploader(server, "car-1", tokens["car-1"], bad, hashlib.sha256(data).hexdigest())
    with pytest.raises(TusUploadFailed) as info:
        up.upload()
    assert info.value.status_code == 422
    assert b'"quarantined"' in info.value.response_content
    status = requests.get(up.url + "/status", headers=headers("car-1", tokens["car-1"])).json()
    assert status["status"] == "quarantined" and status["reason"] == "mcap_invalid"
    assert requests.head(up.url, headers=headers("car-1", tokens["car-1"])).status_code == 422
    assert (server.config.quarantine_dir / f"{status['upload_id']}.mcap").read_bytes() == bytes(data)
    assert requests.get(server.url + "/segments", headers=operator_headers(server.config)).json()["segments"] == []


def test_snapshot_of_another_vehicle_is_quarantined(server: ServerThread, tokens: dict[str, str],
                                                    snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot  # written by car-1
    up = uploader(server, "car-2", tokens["car-2"], path, sha)
    with pytest.raises(TusUploadFailed) as info:
        up.upload()
    assert info.value.status_code == 422
    status = requests.get(up.url + "/status", headers=headers("car-2", tokens["car-2"])).json()
    assert status["reason"] == "vehicle_mismatch"


def test_reupload_is_a_duplicate_without_new_segments(server: ServerThread, tokens: dict[str, str],
                                                      snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    first = uploader(server, "car-1", tokens["car-1"], path, sha)
    first.upload()
    hdrs = headers("car-1", tokens["car-1"])
    meta = f"sha256 {base64.b64encode(sha.encode()).decode()}"
    size = str(path.stat().st_size)
    r = requests.post(server.url + "/files/", headers={**hdrs, "Upload-Length": size, "Upload-Metadata": meta})
    assert r.status_code == 201 and r.headers["X-Avdata-Duplicate"] == "1"
    assert r.headers["Upload-Offset"] == size
    assert server.url + r.headers["Location"] == first.url
    second = uploader(server, "car-1", tokens["car-1"], path, sha)  # tuspy ignores the offset: still fine
    second.upload()
    assert second.offset == path.stat().st_size
    db = open_config_db(server.config)
    try:
        assert len(db.list_segments(None, 100, None)) == 1
        assert len(db.read_outbox(0, 100)) == 1
    finally:
        db.close()
    text = requests.get(server.url + "/metrics").text
    assert metric(text, "avdata_cloud_duplicates_total") == 2
    assert metric(text, "avdata_cloud_uploads_completed_total") == 1
