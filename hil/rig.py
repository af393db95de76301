"""The bench rig: one cloud daemon, one vehicle service and one simulator, provisioned on loopback.

A :class:`Rig` owns the work directory, the ports, the credentials and the process factories; the
demo and the fault-injection runs are sequences of steps over one rig.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import DemoFailed, ProcessFailed
from hil.procs import ManagedProcess, free_port


@dataclass(frozen=True)
class DriveConfig:
    """The simulated drive and the vehicle's trigger window, in seconds."""

    vehicle_id: str = "demo-car"
    duration_s: float = 17.0
    brake_at_s: float = 10.0
    pre_s: float = 8.0
    post_s: float = 4.0
    width: int = 640
    height: int = 360


def tool(name: str) -> str:
    """Path of one of our console scripts, next to the running interpreter when possible."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise DemoFailed(f"{name} is not installed (run `make venv`)")
    return found


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


_STREAM_FIELDS = ("camera_frames", "lidar_sweeps", "radar_returns", "vehicle_states", "other_streams")


class Rig:
    """Provisioned services of one bench run; see the module docstring."""

    def __init__(self, workdir: Path, drive: DriveConfig, upload_via_port: int | None = None) -> None:
        self.workdir = workdir.resolve()
        self.drive = drive
        self.cloud_dir, self.vehicle_dir = self.workdir / "cloud", self.workdir / "vehicle"
        for d in (self.cloud_dir, self.vehicle_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.publish_log = self.workdir / "published.jsonl"
        self.http_port, zmq_port = free_port(), free_port()
        self.cloud_url = f"http://127.0.0.1:{self.http_port}"
        self.endpoint = f"tcp://127.0.0.1:{zmq_port}"
        self.upload_port = upload_via_port or self.http_port
        cloud = tool("avdata-cloud")
        self.token = _run([cloud, "vehicles", "add", drive.vehicle_id, "--data-dir", str(self.cloud_dir)])
        self.operator_token = _run([cloud, "operators", "add", "bench-operator", "--data-dir", str(self.cloud_dir)])
        # The synthetic rig's calibration, registered as a fleet operator would, so segments carry it
        # and their LiDAR is motion-compensated in processed/.
        calib = self.workdir / "rig-calibration.msgpack"
        _run([tool("avdata-sim"), "calibration", "--vehicle", drive.vehicle_id, "--out", str(calib)])
        _run([cloud, "calib", "import", "--format", "avdata", "--vehicle", drive.vehicle_id, "--version", "sim-rig-1",
              "--valid-from-ns", "0", str(calib), "--data-dir", str(self.cloud_dir)])
        self.vehicle_toml = self.workdir / "vehicle.toml"
        self.vehicle_toml.write_text(self._vehicle_toml())

    def _vehicle_toml(self) -> str:
        d = self.drive
        return f"""\
vehicle_id = "{d.vehicle_id}"
data_dir = "{self.vehicle_dir.as_posix()}"

[sources]
endpoints = ["{self.endpoint}"]

[buffer]
max_age_s = 60.0
max_bytes = 268435456

[triggers.hard_brake]
kind = "hard_brake"
decel_mps2 = 4.0
min_duration_s = 0.2
pre_s = {d.pre_s}
post_s = {d.post_s}
cooldown_s = 20.0
priority = 80

[uploader]
url = "http://127.0.0.1:{self.upload_port}/files/"
token = "{self.token}"
chunk_bytes = 1048576
backoff_initial_s = 0.2
backoff_max_s = 2.0
"""

    def cloud(self, name: str = "cloud") -> ManagedProcess:
        return ManagedProcess(name, [tool("avdata-cloud"), "serve", "--data-dir", str(self.cloud_dir),
                                     "--host", "127.0.0.1", "--port", str(self.http_port)], self.workdir)

    def vehicle(self, name: str = "vehicle") -> ManagedProcess:
        return ManagedProcess(name, [tool("avdata-vehicle"), "run", "--config", str(self.vehicle_toml)],
                              self.workdir)

    def simulator(self) -> ManagedProcess:
        d = self.drive
        return ManagedProcess("sim", [
            tool("avdata-sim"), "publish", "--endpoint", self.endpoint, "--duration-s", str(d.duration_s),
            "--brake-at-s", str(d.brake_at_s), "--log", str(self.publish_log), "--width", str(d.width),
            "--height", str(d.height), "--wait-subscriber-s", "20"], self.workdir)

    def get_json(self, path: str) -> Any:
        req = urllib.request.Request(self.cloud_url + path, headers={"Authorization": f"Bearer {self.operator_token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def queue(self) -> list[dict[str, Any]]:
        """The vehicle's upload queue through ``avdata-vehicle queue ls --json``, as an operator reads it."""
        out = _run([tool("avdata-vehicle"), "queue", "ls", "--json", "--config", str(self.vehicle_toml)])
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def upload_progress(self) -> tuple[str, int] | None:
        """``(state, confirmed offset)`` of the first queued snapshot, or ``None`` before there is one.

        Read-only and in milliseconds (the CLI takes about a second to start), so a fault can be
        placed while an upload is in flight; it reads the queue's SQLite file (WAL) directly.
        """
        path = self.vehicle_dir / "queue.sqlite3"
        if not path.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute("SELECT state, offset_bytes FROM snapshots ORDER BY created_ns LIMIT 1").fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def wait_for_segments(self, n: int, timeout_s: float, watch: list[ManagedProcess]) -> list[dict[str, Any]]:
        """The first ``n`` segments with their triggers and streams; fails fast if a watched process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p in watch:
                if p.returncode is not None:
                    raise ProcessFailed(f"{p.name} exited early with {p.returncode}\n{p.log_tail()}")
            try:
                listed: list[dict[str, Any]] = self.get_json("/segments?limit=100")["segments"]
            except OSError:  # the daemon may be restarting
                listed = []
            if len(listed) >= n:
                return [self._summary(row) for row in listed]
            time.sleep(0.5)
        raise ProcessFailed(f"{n} segment(s) did not reach the cloud within {timeout_s:.0f} s")

    def _summary(self, row: dict[str, Any]) -> dict[str, Any]:
        """The parts of a segment the bench prints and its tests check."""
        segment = self.get_json(f"/segments/{row['segment_id']}")["segment"]
        streams = [ref for name in _STREAM_FIELDS for ref in segment.get(name, [])]
        calibration = segment.get("calibration") or {}
        return {**row, "triggers": segment["triggers"], "streams": streams, "source": segment["source"],
                "calibration_version": calibration.get("version", ""),
                "lidar_refs": [r["object_key"] for r in segment.get("lidar_sweeps", [])]}
