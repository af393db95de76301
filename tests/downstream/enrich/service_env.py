"""What the process tests of the enrichment service share: real drives ingested into the test's
database and store, the two TOML files, the real ``avdata-cloud enrich`` process, and a real
``NOTIFY_SOCKET`` that collects what it says."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cloud_ingest.config import CloudConfig, RelayConfig
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.objects.local import LocalObjectStore
from downstream.enrich.store import migrate_enrich
from shared.segment import Segment
from tests.cloud_ingest.conftest import open_config_db
from tests.downstream.enrich.drive import DAY_T0_NS, Drive, ingest, register_kitti_calibration, write_drive
from tests.downstream.enrich.real_data import LANELET2_OSM

REPO = Path(__file__).parents[3]
S = 1_000_000_000


@dataclass
class World:
    """A cloud data directory with ingested segments, and the files to run the service on it."""

    cloud: CloudConfig
    db: SQLMetadataDB
    store: LocalObjectStore
    work: Path
    segments: list[Segment] = field(default_factory=list)

    def add(self, n: int, on_map: bool = True, first: int = 0) -> list[Segment]:
        """Ingest ``n`` more drives (each its own snapshot and segment), 100 s apart."""
        out = []
        for i in range(first, first + n):
            path = self.work / f"drive-{on_map}-{i}.mcap"
            sha = write_drive(path, Drive(on_map=on_map), t0_ns=DAY_T0_NS + i * 100 * S)
            out += ingest(self.db, self.store, self.work, path, sha)
        self.segments += out
        return out

    def toml(self, relay: RelayConfig | None = None, **enrich: object) -> list[str]:
        """``--config``/``--enrich-config`` arguments for files describing this world."""
        c = self.cloud
        cloud = f'data_dir = "{c.data_dir}"\n'
        if c.db.backend == "postgres":
            cloud += f'[db]\nbackend = "postgres"\ndsn = "{c.db.dsn}"\nschema = "{c.db.schema}"\n'
        if relay is not None:
            cloud += (f'[relay]\nnats_url = "{relay.nats_url}"\nstream = "{relay.stream}"\n'
                      f'subject_prefix = "{relay.subject_prefix}"\n')
        settings = {"metrics_port": 0, "poll_timeout_s": 0.3, "processed_wait_s": 1.0, **enrich}
        lines = ["[enrich]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in settings.items()]
        lines += ["[[enrich.maps]]", 'format = "lanelet2"', f'path = "{LANELET2_OSM}"']
        (self.work / "cloud.toml").write_text(cloud)
        (self.work / "enrich.toml").write_text("\n".join(lines) + "\n")
        return ["--config", str(self.work / "cloud.toml"), "--enrich-config", str(self.work / "enrich.toml")]

    def enrichment_keys(self) -> dict[str, float]:
        """Every enrichment document in processed/ and its modification time."""
        root = self.store.root
        return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
                for p in (root / "processed").rglob("v*.json") if p.parent.name == "enrichment"}

    def inbox(self, consumer: str) -> int:
        with self.db.transaction() as tx:
            return int(tx.run("SELECT COUNT(*) FROM consumer_inbox WHERE consumer = ?", (consumer,))[0][0])

    def rows(self, version: int = 1) -> int:
        with self.db.transaction() as tx:
            return int(tx.run("SELECT COUNT(*) FROM enrichment WHERE enricher_version = ?", (version,))[0][0])


def make_world(cloud: CloudConfig, work: Path) -> World:
    db = open_config_db(cloud)
    db.migrate()
    migrate_enrich(db)  # so the test can count rows before the process has started
    register_kitti_calibration(db, "car-1")
    work.mkdir(parents=True, exist_ok=True)
    return World(cloud, db, LocalObjectStore(cloud.store_dir), work)


class Notify:
    """A real ``NOTIFY_SOCKET``: every datagram the process sends, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.got: list[str] = []

    def wait(self, field_: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        for msg in self.got:
            if field_ in msg:
                return msg
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.got.append(msg)
            if field_ in msg:
                return msg
        raise AssertionError(f"{field_} not sent within {timeout_s} s; got {self.got}")

    def close(self) -> None:
        self.sock.close()


def start(args: list[str], notify: Notify | None = None, watchdog_usec: int | None = None) -> subprocess.Popen[bytes]:
    """``avdata-cloud enrich ARGS`` as a real process (the console script's module)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NOTIFY_SOCKET", None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify.path)
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return subprocess.Popen([sys.executable, "-m", "downstream.cli", "enrich", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run(args: list[str], notify: Notify | None = None, timeout_s: float = 240) -> tuple[int, str, str]:
    proc = start(args, notify)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode()
