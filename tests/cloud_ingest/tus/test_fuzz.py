"""Bad input never stops the service: malformed tus headers, odd ids, garbage bodies, HTTP/1.0 and
oversized headers each get a 4xx with a clear message, are counted by reason, and a normal upload
succeeds right after. Header parsers are fuzzed with hypothesis; the daemon over real sockets."""

from __future__ import annotations

import base64
import json
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tusclient import client as tus_client

from cloud_ingest import auth
from cloud_ingest.config import CloudConfig, Limits
from cloud_ingest.errors import ProtocolError
from cloud_ingest.tus.headers import check_upload_id, declared_sha256, parse_checksum, parse_int, parse_metadata
from tests.cloud_ingest.conftest import ServerThread, headers, metric, open_config_db

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
                      max_size=120)
# What a client can put on the wire: HTTP strips leading whitespace of a field value (RFC 9110 §5.5),
# and requests refuses to send it at all, so the live fuzz drops it instead of failing in the client.
WIRE_TEXT = HEADER_TEXT.map(str.lstrip)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.none(), HEADER_TEXT, st.integers(-10**30, 10**30).map(str)))
def test_header_parsers_answer_or_refuse_with_a_protocol_error(value: str | None) -> None:
    for parse in (lambda v: parse_int("Upload-Offset", v), parse_metadata, parse_checksum,
                  lambda v: check_upload_id(v or ""), lambda v: declared_sha256(parse_metadata(v))):
        try:
            parse(value)
        except ProtocolError as exc:
            assert 400 <= exc.status < 500 and exc.reason and exc.detail


@pytest.mark.parametrize("value", ["-1", "²", "1e9", " 5", "5 ", "٣", "0x10", "9" * 20, "9" * 5000, "", "+1"])
def test_integers_are_plain_ascii_digits(value: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_int("Upload-Length", value)
    assert info.value.reason == "bad_header" and len(info.value.detail) < 200


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    srv = ServerThread(CloudConfig(data_dir=tmp_path / "cloud", limits=Limits(rate_per_s=1e6, rate_burst=10**6)))
    db = open_config_db(srv.config)
    token = auth.register(db, "car-1")
    db.close()
    yield srv, token
    srv.stop()


def raw_request(srv: ServerThread, blob: bytes) -> tuple[int, bytes]:
    """Send ``blob`` as is; return the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", srv.config.port), timeout=10) as s:
        s.sendall(blob)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _upload_ok(srv: ServerThread, token: str, snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    c = tus_client.TusClient(srv.url + "/files/", headers={"X-Avdata-Vehicle": "car-1",
                                                           "Authorization": f"Bearer {token}"})
    up = c.uploader(str(path), chunk_size=256 * 1024, metadata={"sha256": sha})
    up.upload()
    assert up.request is not None and up.request.status_code == 204
    assert up.request.response_headers["x-avdata-segments"]


def test_malformed_requests_get_typed_4xx_are_counted_and_the_daemon_keeps_serving(
        daemon: tuple[ServerThread, str], snapshot: tuple[Path, str]) -> None:
    srv, token = daemon
    hdrs = headers("car-1", token)
    good_meta = f"sha256 {base64.b64encode(snapshot[1].encode()).decode()}"
    url = srv.url + requests.post(srv.url + "/files/", headers={**hdrs, "Upload-Length": "100",
                                                                "Upload-Metadata": good_meta}).headers["Location"]
    patch = {**hdrs, "Content-Type": "application/offset+octet-stream"}
    cases: list[tuple[str, requests.Response, int, str]] = [
        ("bad base64", requests.post(srv.url + "/files/", headers={
            **hdrs, "Upload-Length": "10", "Upload-Metadata": "sha256 !!!notbase64"}), 400, "bad_metadata"),
        ("negative length", requests.post(srv.url + "/files/", headers={
            **hdrs, "Upload-Length": "-1", "Upload-Metadata": good_meta}), 400, "bad_header"),
        ("huge length", requests.post(srv.url + "/files/", headers={
            **hdrs, "Upload-Length": "9" * 40, "Upload-Metadata": good_meta}), 400, "bad_header"),
        ("over max", requests.post(srv.url + "/files/", headers={
            **hdrs, "Upload-Length": str(10**18), "Upload-Metadata": good_meta}), 413, "too_large"),
        ("no sha", requests.post(srv.url + "/files/", headers={
            **hdrs, "Upload-Length": "10", "Upload-Metadata": "a " + "QQ==," * 40}), 400, "bad_metadata"),
        ("text offset", requests.patch(url, data=b"x", headers={**patch, "Upload-Offset": "ten"}), 400,
         "bad_header"),
        ("garbage body type", requests.patch(url, data=b"\x00\xff" * 50, headers={
            **patch, "Content-Type": "text/garbage", "Upload-Offset": "0"}), 415, "bad_content_type"),
        ("path trick", requests.head(srv.url + "/files/..%2F..%2Fetc%2Fpasswd", headers=hdrs), 404,
         "bad_upload_id"),
        ("unicode id", requests.head(srv.url + "/files/%C3%A9t%C3%A9" + "0" * 28, headers=hdrs), 404,
         "bad_upload_id"),
        ("nested path", requests.head(srv.url + "/files/a/b/c", headers=hdrs), 404, "no_route"),
        ("wrong method", requests.put(url, headers=hdrs), 405, "method_not_allowed"),
        ("old tus", requests.head(url, headers={**hdrs, "Tus-Resumable": "0.2.2"}), 412, "tus_version"),
        ("bad checksum header", requests.patch(url, data=b"x", headers={
            **patch, "Upload-Offset": "0", "Upload-Checksum": "crc99 ***"}), 400, "bad_checksum_header"),
    ]
    for name, r, status, reason in cases:
        assert r.status_code == status, name
        if r.request.method != "HEAD":  # a HEAD answer carries no body
            assert r.json()["error"] == reason and r.json()["detail"], name
    # HTTP/1.0 without a length, a raw unicode id, a garbage request line, oversized headers
    auth_lines = f"X-Avdata-Vehicle: car-1\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
    path = url.removeprefix(srv.url)
    status, body = raw_request(srv, (f"PATCH {path} HTTP/1.0\r\n{auth_lines}Upload-Offset: 0\r\n"
                                     "Content-Type: application/offset+octet-stream\r\n\r\n").encode())
    assert status == 411 and json.loads(body)["error"] == "length_required"
    status, body = raw_request(srv, f"HEAD /files/\u00e9\u00e9 HTTP/1.0\r\n{auth_lines}\r\n".encode())
    assert status == 400  # raw UTF-8 in the request target: refused by the HTTP parser
    status, body = raw_request(srv, b"GARBAGE\x00\x01 / NOT-HTTP\r\n\r\n")
    assert status == 400
    status, body = raw_request(srv, (f"POST /files/ HTTP/1.1\r\nHost: x\r\n{auth_lines}Upload-Length: 10\r\n"
                                     f"Upload-Metadata: {'k QQ==,' * 3000}\r\n\r\n").encode())
    assert status in (400, 431) and b"got more than 8190 bytes" in body.lower()
    status, _ = raw_request(srv, f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".encode())
    assert status == 400

    text = requests.get(srv.url + "/metrics").text
    for _, _, _, reason in cases:
        assert metric(text, "avdata_cloud_rejected_total", reason=reason) >= 1, reason
    assert metric(text, "avdata_cloud_rejected_total", reason="length_required") == 1
    assert metric(text, "avdata_cloud_rejected_total", reason="http_parse") == 4  # refused by the parser
    assert metric(text, "avdata_cloud_rejected_total", reason="internal") == 0
    assert requests.head(url, headers=hdrs).headers["Upload-Offset"] == "0"  # nothing of it was kept
    _upload_ok(srv, token, snapshot)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=WIRE_TEXT, meta=WIRE_TEXT, offset=WIRE_TEXT, upload_id=HEADER_TEXT)
def test_fuzzed_tus_headers_never_get_a_5xx(daemon: tuple[ServerThread, str], length: str, meta: str,
                                           offset: str, upload_id: str) -> None:
    srv, token = daemon
    hdrs = headers("car-1", token)

    def latin1(v: str) -> str:
        return v.encode("utf-8").decode("latin-1")  # what a client puts on the wire for non-ASCII text

    r = requests.post(srv.url + "/files/", headers={**hdrs, "Upload-Length": latin1(length),
                                                    "Upload-Metadata": latin1(meta)})
    assert r.status_code < 500 and (r.status_code == 201 or r.json()["detail"])
    target = r.headers["Location"] if r.status_code == 201 else "/files/" + urllib.parse.quote(upload_id)
    r = requests.patch(srv.url + target, data=b"\x89MCAP", headers={
        **hdrs, "Upload-Offset": latin1(offset), "Content-Type": "application/offset+octet-stream"})
    assert r.status_code < 500, r.text
    assert requests.get(srv.url + "/healthz").status_code == 200
