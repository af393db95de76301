"""``avdata-cloud``: main(argv) for vehicles and segments, and ``serve`` as a real process under a
real ``NOTIFY_SOCKET``, stopped by a real SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from cloud_ingest import auth
from cloud_ingest.cli.main import main
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import AuthError
from tests.cloud_ingest.conftest import ServerThread, free_port, open_config_db

REPO = Path(__file__).parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_vehicles_add_prints_only_the_token_and_rotate_replaces_it(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "cloud")
    rc, out, _ = run(["vehicles", "add", "car-9", "--data-dir", d], capsys)
    assert rc == 0 and out.count("\n") == 1
    token = out.strip()
    assert len(token) >= 43 and " " not in token
    db = open_config_db(CloudConfig(data_dir=Path(d)))
    try:
        assert auth.authenticate(db, "car-9", f"Bearer {token}").vehicle_id == "car-9"
        rc, out, _ = run(["vehicles", "rotate", "car-9", "--data-dir", d], capsys)
        assert rc == 0 and out.strip() != token
        with pytest.raises(AuthError):
            auth.authenticate(db, "car-9", f"Bearer {token}")
        assert auth.authenticate(db, "car-9", f"Bearer {out.strip()}").vehicle_id == "car-9"
        stored = db.get_vehicle("car-9")
        assert stored is not None and token.encode() not in stored.token_hash + stored.salt
    finally:
        db.close()
    rc, _, err = run(["vehicles", "add", "car-9", "--data-dir", d], capsys)
    assert rc == 1 and "already registered" in err
    rc, _, err = run(["vehicles", "add", "../evil", "--data-dir", d], capsys)
    assert rc == 1 and "vehicle id" in err
    rc, out, _ = run(["vehicles", "ls", "--data-dir", d], capsys)
    assert out.startswith("car-9\t")


def test_segments_ls_and_show_print_what_was_ingested(tmp_path: Path, snapshot: tuple[Path, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path, sha = snapshot
    d = tmp_path / "cloud"
    rc, out, _ = run(["vehicles", "add", "car-1", "--data-dir", str(d)], capsys)
    token = out.strip()
    srv = ServerThread(CloudConfig(data_dir=d))
    try:
        c = tus_client.TusClient(srv.url + "/files/", headers={"X-Avdata-Vehicle": "car-1",
                                                               "Authorization": f"Bearer {token}"})
        up = c.uploader(str(path), chunk_size=1 << 20, metadata={"filename": "s.mcap", "sha256": sha})
        up.upload()
        assert up.request is not None
        sid = up.request.response_headers["x-avdata-segments"]
    finally:
        srv.stop()
    rc, out, _ = run(["segments", "ls", "--data-dir", str(d)], capsys)
    assert rc == 0 and out.startswith(sid + "\tcar-1\t") and "12.0s" in out
    rc, out, _ = run(["segments", "ls", "--data-dir", str(d), "--json", "--vehicle", "car-1"], capsys)
    assert [s["segment_id"] for s in json.loads(out)["segments"]] == [sid]
    rc, out, _ = run(["segments", "ls", "--data-dir", str(d), "--vehicle", "car-2"], capsys)
    assert out == ""
    rc, out, _ = run(["segments", "show", sid, "--data-dir", str(d)], capsys)
    assert rc == 0 and f"sha256={sha}" in out and "hard_brake" in out and "camera/front" in out
    rc, out, _ = run(["segments", "show", sid, "--data-dir", str(d), "--json"], capsys)
    doc = json.loads(out)
    assert doc["segment"]["provenance"]["snapshot_sha256"] == [sha]
    rc, _, err = run(["segments", "show", "nope", "--data-dir", str(d)], capsys)
    assert rc == 1 and "no segment" in err


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cloud.toml"
    cfg.write_text('data_dir = "x"\n[limits]\nmax_upload_bytes = "big"\n')
    rc, _, err = run(["segments", "ls", "--config", str(cfg)], capsys)
    assert rc == 1 and "limits.max_upload_bytes" in err


def test_serve_notifies_ready_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(20)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", "serve", "--data-dir",
                             str(tmp_path / "cloud"), "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = sock.recv(4096).decode()
        assert "READY=1" in ready and f":{port}" in ready
        r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert "avdata_cloud_requests_total" in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        proc.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in sock.recv(4096).decode()
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(x["msg"] == "listening" for x in lines) and lines[-1]["msg"] == "stopped"


def test_help_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "tus 1.0.0" in capsys.readouterr().out
