"""Fixtures for the cloud ingest tests: real snapshots, a real daemon on loopback, both DB back-ends."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.app import create_app, make_runner
from cloud_ingest.config import CloudConfig, DBConfig, Limits
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared.messages import SensorMessage
from shared.payloads import LIDAR_DTYPE, ImuSample, VehicleState, encode_points, encode_small
from shared.snapshot import SnapshotWriter
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from tests.helpers import encode_h265 as _encode_h265
from tests.helpers import require

NS = 1_000_000_000
T0_NS = 1_700_000_000 * NS  # 2023-11-14 UTC
KITTI_BIN = Path(__file__).parents[1] / "fixtures" / "real" / "kitti" / "velodyne" / "000000.bin"
PG_DSN = os.environ.get("AVDATA_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def encode_h265(n_frames: int, gop: int = 10, size: int = 64) -> list[tuple[bytes, bool]]:
    """Real H.265 access units (see tests.helpers.encode_h265) at 10 fps."""
    return _encode_h265(n_frames, gop=gop, size=size, fps=10, shade_step=7)


@pytest.fixture(scope="session")
def h265_units() -> list[tuple[bytes, bool]]:
    return encode_h265(20)


@pytest.fixture(scope="session")
def kitti_points() -> bytes:
    """2000 returns of a real KITTI velodyne sweep, as LIDAR_DTYPE bytes."""
    raw = np.fromfile(KITTI_BIN, dtype="<f4").reshape(-1, 4)[::50][:2000]
    pts = np.zeros(raw.shape[0], LIDAR_DTYPE)
    for i, name in enumerate(("x", "y", "z")):
        pts[name] = raw[:, i]
    pts["intensity"] = raw[:, 3] * 255
    pts["ring"] = np.arange(raw.shape[0]) % 64
    return bytes(encode_points(pts, LIDAR_DTYPE))


def snapshot_messages(duration_s: float, units: list[tuple[bytes, bool]], lidar: bytes,
                      t0_ns: int = T0_NS, camera_hz: int = 10) -> list[SensorMessage]:
    """A drive of ``duration_s``: camera (real H.265, keyframe every 1 s), lidar 10 Hz (real KITTI
    points), imu 50 Hz, vehicle_state 20 Hz, time-sorted."""
    msgs: list[SensorMessage] = []
    n_cam = int(duration_s * camera_hz)
    for i in range(n_cam):
        data, _key = units[i % len(units)]
        msgs.append(SensorMessage("camera/front", "cam_front", t0_ns + i * NS // camera_hz, 0, i, "h265",
                                  data, keyframe=(i % camera_hz == 0)))
    for i in range(int(duration_s * 10)):
        msgs.append(SensorMessage("lidar/top", "lidar_top", t0_ns + i * NS // 10 + 1, 0, i, "lidar_points_v1",
                                  lidar))
    for i in range(int(duration_s * 50)):
        msgs.append(SensorMessage("imu", "imu0", t0_ns + i * NS // 50 + 2, 0, i, "imu_v1",
                                  encode_small(ImuSample((0.1, 0.0, 9.8), (0.0, 0.0, 0.01)))))
    for i in range(int(duration_s * 20)):
        accel = -6.0 if abs(i / 20 - duration_s * 0.75) < 0.5 else 0.0
        msgs.append(SensorMessage("vehicle_state", "can0", t0_ns + i * NS // 20 + 3, 0, i, "vehicle_state_v1",
                                  encode_small(VehicleState(i * 0.75, 0.0, 0.0, 15.0, accel, 0.0, 0.0, True))))
    msgs.sort(key=lambda m: m.t_sensor_ns)
    return msgs


def write_snapshot(path: Path, msgs: list[SensorMessage], vehicle_id: str = "car-1",
                   start_ns: int | None = None, end_ns: int | None = None) -> str:
    """Write ``msgs`` as a finished snapshot; return its sha256."""
    start = msgs[0].t_sensor_ns if start_ns is None else start_ns
    end = msgs[-1].t_sensor_ns if end_ns is None else end_ns
    t = start + (end - start) * 3 // 4
    trig = TriggerEvent(TriggerKind.HARD_BRAKE, t, start, end, 80, TriggerSource.RULE, "hard_brake",
                        {"decel_mps2": 6.0})
    w = SnapshotWriter(path, chunk_size=256 * 1024)
    for m in msgs:
        w.add(m, m.t_sensor_ns)
    manifest = w.finish(snapshot_id=f"snap-{uuid.uuid4().hex[:8]}", vehicle_id=vehicle_id, created_ns=end,
                        start_ns=start, end_ns=end, triggers=(trig,), software_version="0.1.0",
                        model_version="yolox_nano", calibration_version="calib-1")
    return manifest.sha256


@pytest.fixture
def snapshot(tmp_path: Path, h265_units: list[tuple[bytes, bool]], kitti_points: bytes) -> tuple[Path, str]:
    """A real 12 s snapshot of vehicle ``car-1`` and its sha256."""
    path = tmp_path / "snap.mcap"
    return path, write_snapshot(path, snapshot_messages(12.0, h265_units, kitti_points))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """The real app (``create_app``) served on a loopback port by a background event loop."""

    def __init__(self, config: CloudConfig) -> None:
        self.config = replace(config, port=free_port())
        self.app = create_app(self.config)
        self.url = f"http://127.0.0.1:{self.config.port}"
        self._loop = asyncio.new_event_loop()
        self._runner = make_runner(self.app, handle_signals=False, shutdown_timeout=2.0)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start())

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.config.port).start()

    def stop(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def pg_available() -> str | None:
    try:
        import psycopg

        psycopg.connect(PG_DSN, connect_timeout=2).close()
        return None
    except Exception as exc:
        return f"PostgreSQL at {PG_DSN} unreachable: {exc}"


@pytest.fixture
def nats_server() -> None:
    """The NATS server the tests use: a skip with the reason when it is absent, a failure under CI."""
    from tests.cloud_ingest.queue.helpers import nats_unreachable

    require(nats_unreachable())


@pytest.fixture(params=["sqlite", "postgres"])
def db_config(request: pytest.FixtureRequest) -> Iterator[DBConfig]:
    """Each back-end in turn; PostgreSQL gets a fresh schema, dropped afterwards."""
    if request.param == "sqlite":
        yield DBConfig()
        return
    require(pg_available())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield DBConfig(backend="postgres", dsn=PG_DSN, schema=schema)
    from cloud_ingest.storage.metadata.postgres import PostgresDB

    pg = PostgresDB(PG_DSN, schema)
    pg.drop_schema()
    pg.close()


@pytest.fixture
def cloud_config(tmp_path: Path, db_config: DBConfig) -> CloudConfig:
    return CloudConfig(data_dir=tmp_path / "cloud", db=db_config, limits=Limits(read_chunk_bytes=64 * 1024))


def open_config_db(cfg: CloudConfig) -> SQLMetadataDB:
    return open_db(cfg.db.backend, sqlite_path=str(cfg.sqlite_path), dsn=cfg.db.dsn, schema=cfg.db.schema)


@pytest.fixture
def server(cloud_config: CloudConfig) -> Iterator[ServerThread]:
    srv = ServerThread(cloud_config)
    yield srv
    srv.stop()


@pytest.fixture
def tokens(server: ServerThread) -> dict[str, str]:
    """Two registered vehicles and their tokens."""
    db = open_config_db(server.config)
    try:
        return {v: auth.register(db, v) for v in ("car-1", "car-2")}
    finally:
        db.close()


def metric(text: str, sample: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition ``text`` (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def operator_headers(cfg: CloudConfig, name: str = "analyst") -> dict[str, str]:
    """Create a read-API operator (once per name) and return its Authorization header."""
    db = open_config_db(cfg)
    try:
        return {"Authorization": f"Bearer {auth.add_operator(db, name)}"}
    finally:
        db.close()


def headers(vehicle: str, token: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", "X-Avdata-Vehicle": vehicle, "Authorization": f"Bearer {token}"}
