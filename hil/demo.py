"""The end-to-end demo: simulator → vehicle service → cloud ingest, real processes on loopback.

``avdata-hil demo`` (and ``make demo``) runs it with the embedded defaults. The drive is 17 s with a
hard brake at 10 s; the snapshot window is [-8 s, +4 s] around the trigger instead of the product
default [-30 s, +10 s], so the whole loop finishes in well under a minute on a 2-core machine.
"""

from __future__ import annotations

import json
import shutil
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
class DemoConfig:
    """Knobs of one demo run; times in seconds of the simulated drive."""

    workdir: Path
    vehicle_id: str = "demo-car"
    duration_s: float = 17.0
    brake_at_s: float = 10.0
    pre_s: float = 8.0
    post_s: float = 4.0
    width: int = 640
    height: int = 360
    expected_segments: int = 1
    timeout_s: float = 120.0


@dataclass(frozen=True)
class DemoResult:
    """What a run left behind, for printing and for the end-to-end test."""

    workdir: Path
    cloud_dir: Path
    vehicle_dir: Path
    publish_log: Path
    cloud_url: str
    segments: list[dict[str, Any]]
    exit_codes: dict[str, int]


def tool(name: str) -> str:
    """Path of one of our console scripts, next to the running interpreter when possible."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise DemoFailed(f"{name} is not installed (run `make venv`)")
    return found


def _get_json(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _vehicle_toml(cfg: DemoConfig, vehicle_dir: Path, endpoint: str, url: str, token: str) -> str:
    return f"""\
vehicle_id = "{cfg.vehicle_id}"
data_dir = "{vehicle_dir.as_posix()}"

[sources]
endpoints = ["{endpoint}"]

[buffer]
max_age_s = 60.0
max_bytes = 268435456

[triggers.hard_brake]
kind = "hard_brake"
decel_mps2 = 4.0
min_duration_s = 0.2
pre_s = {cfg.pre_s}
post_s = {cfg.post_s}
cooldown_s = 20.0
priority = 80

[uploader]
url = "{url}"
token = "{token}"
chunk_bytes = 1048576
"""


def run_demo(cfg: DemoConfig, progress: Any = None) -> DemoResult:
    """Run the whole loop once; raise :class:`DemoFailed` with the relevant logs if any stage fails."""
    say = progress or (lambda msg: None)
    workdir = cfg.workdir.resolve()
    cloud_dir, vehicle_dir = workdir / "cloud", workdir / "vehicle"
    for d in (cloud_dir, vehicle_dir):
        d.mkdir(parents=True, exist_ok=True)
    publish_log = workdir / "published.jsonl"
    http_port, zmq_port = free_port(), free_port()
    cloud_url = f"http://127.0.0.1:{http_port}"
    endpoint = f"tcp://127.0.0.1:{zmq_port}"

    token = subprocess.run(
        [tool("avdata-cloud"), "vehicles", "add", cfg.vehicle_id, "--data-dir", str(cloud_dir)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    operator_token = subprocess.run(
        [tool("avdata-cloud"), "operators", "add", "demo-operator", "--data-dir", str(cloud_dir)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    vehicle_toml = workdir / "vehicle.toml"
    vehicle_toml.write_text(_vehicle_toml(cfg, vehicle_dir, endpoint, f"{cloud_url}/files/", token))

    cloud = ManagedProcess("cloud", [tool("avdata-cloud"), "serve", "--data-dir", str(cloud_dir),
                                     "--host", "127.0.0.1", "--port", str(http_port)], workdir)
    vehicle = ManagedProcess("vehicle", [tool("avdata-vehicle"), "run", "--config", str(vehicle_toml)], workdir)
    sim = ManagedProcess("sim", [
        tool("avdata-sim"), "publish", "--endpoint", endpoint, "--duration-s", str(cfg.duration_s),
        "--brake-at-s", str(cfg.brake_at_s), "--log", str(publish_log), "--width", str(cfg.width),
        "--height", str(cfg.height), "--wait-subscriber-s", "20"], workdir)
    procs = [sim, vehicle, cloud]
    codes: dict[str, int] = {}
    try:
        say(f"starting cloud ingest on {cloud_url}")
        cloud.start().wait_ready(30)
        say(f"starting vehicle service ({cfg.vehicle_id}), subscribing to {endpoint}")
        vehicle.start().wait_ready(30)
        say(f"publishing a {cfg.duration_s:.0f} s drive with a hard brake at {cfg.brake_at_s:.0f} s")
        sim.start()
        codes["sim"] = sim.wait(cfg.duration_s + 60)
        if codes["sim"] != 0:
            raise ProcessFailed(f"simulator exited with {codes['sim']}\n{sim.log_tail()}")
        say("drive published; waiting for the snapshot to reach the cloud")
        segments = _wait_for_segments(cloud_url, operator_token, cfg, [vehicle, cloud])
    except ProcessFailed as exc:
        raise DemoFailed(str(exc) + "\n" + "\n".join(p.log_tail(15) for p in procs)) from exc
    finally:
        for p in procs:
            codes.setdefault(p.name, p.stop())
    for name in ("vehicle", "cloud"):
        if codes[name] != 0:
            raise DemoFailed(f"{name} did not shut down cleanly (exit {codes[name]})")
    return DemoResult(workdir, cloud_dir, vehicle_dir, publish_log, cloud_url, segments, codes)


def _wait_for_segments(
    cloud_url: str, token: str, cfg: DemoConfig, procs: list[ManagedProcess]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + cfg.timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if p.returncode is not None:
                raise ProcessFailed(f"{p.name} exited early with {p.returncode}\n{p.log_tail()}")
        listed: list[dict[str, Any]] = _get_json(f"{cloud_url}/segments?limit=100", token)["segments"]
        if len(listed) >= cfg.expected_segments:
            return [_summary(row, _get_json(f"{cloud_url}/segments/{row['segment_id']}", token)["segment"])
                    for row in listed]
        time.sleep(0.5)
    raise ProcessFailed(f"no segment reached the cloud within {cfg.timeout_s:.0f} s")


_STREAM_FIELDS = ("camera_frames", "lidar_sweeps", "radar_returns", "vehicle_states", "other_streams")


def _summary(row: dict[str, Any], segment: dict[str, Any]) -> dict[str, Any]:
    """The parts of a segment the demo prints and the end-to-end test checks."""
    streams = [ref for name in _STREAM_FIELDS for ref in segment.get(name, [])]
    return {**row, "triggers": segment["triggers"], "streams": streams, "source": segment["source"]}
