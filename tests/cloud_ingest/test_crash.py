"""kill -9 of the real daemon (``avdata-cloud serve`` in its own process) at seeded random instants
of an upload: during ordinary PATCHes, during the final PATCH, just after the raw object lands and
just after the processed outputs start to land. After each kill the daemon is restarted on the
same data directory and the client resumes the way a tus client does (HEAD, then PATCH from the
offset it is told). The end state is checked in the DB, the object store and over HTTP."""

from __future__ import annotations

import base64
import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from cloud_ingest import auth
from cloud_ingest.config import CloudConfig
from cloud_ingest.pipeline import raw_key
from cloud_ingest.storage.metadata.protocol import COMPLETE
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.objects.local import LocalObjectStore
from shared.snapshot import sha256_file
from tests.cloud_ingest.conftest import (
    NS,
    T0_NS,
    free_port,
    headers,
    open_config_db,
    snapshot_messages,
    write_snapshot,
)

REPO = Path(__file__).parents[2]
KILLS = ("patch", "final", "raw", "processed", "final", "patch", "raw", "final")


class Daemon:
    """``python -m cloud_ingest.cli serve`` on a fixed port and data directory."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud_ingest.cli", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=out, stderr=out)
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.02)
        raise AssertionError("daemon did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "cloud", free_port(), tmp_path / "daemon.log")
    d.data_dir.mkdir()
    d.start()
    yield d
    d.kill()


class Client:
    """A resuming tus client over ``requests``; ``before_patch(offset, final)`` runs before each PATCH."""

    def __init__(self, daemon: Daemon, token: str, data: bytes, sha: str, chunk: int) -> None:
        self.daemon, self.data, self.sha, self.chunk = daemon, data, sha, chunk
        self.hdrs = headers("car-1", token)
        self.url: str | None = None
        self.before_patch: Callable[[int, bool], None] = lambda offset, final: None

    def _create(self) -> str:
        meta = f"sha256 {base64.b64encode(self.sha.encode()).decode()}"
        r = requests.post(self.daemon.url + "/files/", headers={**self.hdrs, "Upload-Length": str(len(self.data)),
                                                                "Upload-Metadata": meta}, timeout=10)
        assert r.status_code == 201, r.text
        return r.headers["Location"]

    def deliver(self) -> list[str]:
        """Send until the daemon says the snapshot is stored; return its segment ids."""
        while True:
            if self.url is None:
                self.url = self._create()
            head = requests.head(self.daemon.url + self.url, headers=self.hdrs, timeout=10)
            if head.status_code == 409:  # another request (the repair pass) is completing it
                time.sleep(0.05)
                continue
            assert head.status_code == 200, (head.status_code, head.headers)
            if head.headers["X-Avdata-Status"] == COMPLETE:
                assert head.headers["Upload-Offset"] == str(len(self.data))
                return head.headers["X-Avdata-Segments"].split(",")
            offset = int(head.headers["Upload-Offset"])
            assert offset < len(self.data)  # never "all bytes here" without being stored
            while offset < len(self.data):
                body = self.data[offset:offset + self.chunk]
                self.before_patch(offset, offset + len(body) == len(self.data))
                r = requests.patch(self.daemon.url + self.url, data=body, timeout=10, headers={
                    **self.hdrs, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
                assert r.status_code == 204, (r.status_code, r.text)
                offset = int(r.headers["Upload-Offset"])
            return r.headers["X-Avdata-Segments"].split(",")


class Killer:
    """The client's ``before_patch`` hook: arms one SIGKILL of the given kind, at a seeded instant."""

    def __init__(self, daemon: Daemon, rng: random.Random, kind: str, landed: Callable[[], bool]) -> None:
        self.daemon, self.rng, self.kind, self.landed = daemon, rng, kind, landed
        self.patches_left = rng.randrange(1, 7)
        self.fire: threading.Thread | None = None

    def _watch(self) -> None:
        deadline = time.monotonic() + 5
        while not self.landed() and time.monotonic() < deadline:
            time.sleep(0.0002)
        self.daemon.kill()

    def __call__(self, offset: int, final: bool) -> None:
        if self.fire is not None:
            return
        if self.kind == "patch":  # a random instant of a random ordinary PATCH
            if final or self.patches_left > 0:
                self.patches_left -= 1
                return
            self.fire = threading.Timer(self.rng.uniform(0.0, 0.01), self.daemon.kill)
        elif not final:
            return
        elif self.kind == "final":  # a random instant of the final PATCH (write, scan, store, commit)
            self.fire = threading.Timer(self.rng.uniform(0.0, 0.04), self.daemon.kill)
        else:  # as soon as the raw object, or the first processed output, is on disk
            self.fire = threading.Thread(target=self._watch, daemon=True)
        self.fire.start()

    def settle(self) -> None:
        """Wait for the armed kill (it may land after the answer) and bring the daemon back."""
        if self.fire is not None:
            self.fire.join(10)
        assert self.daemon.proc is not None
        if self.daemon.proc.poll() is not None:
            self.daemon.start()


def _deliver_through_kills(daemon: Daemon, client: Client) -> list[str]:
    for _ in range(5):
        try:
            return client.deliver()
        except (requests.ConnectionError, requests.Timeout):
            assert daemon.proc is not None
            daemon.proc.wait(10)  # it was killed: restart it on the same data directory
            daemon.start()
    raise AssertionError("upload did not finish after 5 restarts")


def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _processed_count(cfg: CloudConfig) -> int:
    return len(list(cfg.store_dir.glob("processed/*/*/segment.msgpack")))


def _check_stored(cfg: CloudConfig, db: SQLMetadataDB, daemon: Daemon, client: Client, raw: Path,
                  segments: list[str], kind: str) -> None:
    store = LocalObjectStore(cfg.store_dir)
    assert db.segment_ids_for_sha("car-1", client.sha) == segments and len(segments) == 1
    assert sha256_file(raw) == client.sha  # the raw object is whole
    outbox = [o.segment_id for o in db.read_outbox(0, 1000)]
    assert outbox.count(segments[0]) == 1, kind  # announced exactly once
    with db.transaction() as tx:
        ups = tx.run("SELECT status FROM uploads WHERE sha256 = ?", (client.sha,))
    assert ups == [(COMPLETE,)], (kind, ups)  # one upload, complete: no orphan row
    row = db.get_segment(segments[0])
    assert row is not None and row.raw_key == raw.relative_to(cfg.store_dir).as_posix()
    base = f"processed/2023-11-14/{segments[0]}"
    _eventually(lambda: store.exists(f"{base}/segment.msgpack") and store.exists(f"{base}/index.json"),
                f"processed outputs after a {kind} kill")
    assert store.read_bytes(f"{base}/segment.msgpack") == row.record
    _eventually(lambda: not db.unprocessed_segments(time.time_ns(), 10), "processed_ns marked")
    _eventually(lambda: not [p for p in cfg.uploads_dir.iterdir() if p.suffix in (".part", ".ingest")],
                f"upload files left after a {kind} kill")
    head = requests.head(daemon.url + (client.url or ""), headers=client.hdrs, timeout=10)
    assert head.status_code == 200 and head.headers["X-Avdata-Segments"] == segments[0]


def test_kill_9_at_random_instants_loses_nothing_and_duplicates_nothing(
        daemon: Daemon, tmp_path: Path, h265_units: list[tuple[bytes, bool]], kitti_points: bytes) -> None:
    cfg = CloudConfig(data_dir=daemon.data_dir)
    db = open_config_db(cfg)
    token = auth.register(db, "car-1")
    store = LocalObjectStore(cfg.store_dir)
    rng = random.Random(20231114)
    restarts = 0
    try:
        for i, kind in enumerate(KILLS):
            t0 = T0_NS + i * 100 * NS  # far apart: no joins, one segment per snapshot
            path = tmp_path / f"snap{i}.mcap"
            msgs = snapshot_messages(6.0, h265_units, kitti_points, t0_ns=t0)
            sha = write_snapshot(path, msgs)
            data = path.read_bytes()
            client = Client(daemon, token, data, sha, chunk=len(data) // 10 + 1)
            raw = store.path(raw_key("car-1", sha, msgs[0].t_sensor_ns))
            before = _processed_count(cfg)
            landed: Callable[[], bool] = raw.exists if kind == "raw" else functools.partial(
                lambda n: _processed_count(cfg) > n, before)
            killer = Killer(daemon, rng, kind, landed)
            client.before_patch = killer
            segments = _deliver_through_kills(daemon, client)
            killer.settle()
            restarts += daemon.starts - 1
            daemon.starts = 1
            _check_stored(cfg, db, daemon, client, raw, segments, kind)
        assert len(db.list_segments("car-1", 100, None)) == len(KILLS)
        assert len(db.read_outbox(0, 1000)) == len(KILLS)
        assert restarts == len(KILLS)  # every kill landed, each during an upload or right after its answer
    finally:
        db.close()
