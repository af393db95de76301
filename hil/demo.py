"""The end-to-end demo: simulator → vehicle service → cloud ingest, real processes on loopback.

``avdata-hil demo`` (and ``make demo``) runs it with the embedded defaults. The drive is 17 s with a
hard brake at 10 s; the snapshot window is [-8 s, +4 s] around the trigger instead of the product
default [-30 s, +10 s], so the whole loop finishes in well under a minute on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import DemoFailed, ProcessFailed
from hil.rig import DriveConfig, Rig, tool

__all__ = ["DemoConfig", "DemoResult", "DriveConfig", "run_demo", "tool"]


@dataclass(frozen=True)
class DemoConfig:
    """Knobs of one demo run; times in seconds of the simulated drive."""

    workdir: Path
    drive: DriveConfig = field(default_factory=DriveConfig)
    expected_segments: int = 1
    timeout_s: float = 120.0


@dataclass(frozen=True)
class DemoResult:
    """What a run left behind, for printing and for the end-to-end tests."""

    workdir: Path
    cloud_dir: Path
    vehicle_dir: Path
    publish_log: Path
    cloud_url: str
    segments: list[dict[str, Any]]
    exit_codes: dict[str, int]


def run_demo(cfg: DemoConfig, progress: Any = None) -> DemoResult:
    """Run the whole loop once; raise :class:`DemoFailed` with the relevant logs if any stage fails."""
    say = progress or (lambda msg: None)
    rig = Rig(cfg.workdir, cfg.drive)
    cloud, vehicle, sim = rig.cloud(), rig.vehicle(), rig.simulator()
    procs = [sim, vehicle, cloud]
    codes: dict[str, int] = {}
    d = cfg.drive
    try:
        say(f"starting cloud ingest on {rig.cloud_url}")
        cloud.start().wait_ready(30)
        say(f"starting vehicle service ({d.vehicle_id}), subscribing to {rig.endpoint}")
        vehicle.start().wait_ready(30)
        say(f"publishing a {d.duration_s:.0f} s drive with a hard brake at {d.brake_at_s:.0f} s")
        sim.start()
        codes["sim"] = sim.wait(d.duration_s + 60)
        if codes["sim"] != 0:
            raise ProcessFailed(f"simulator exited with {codes['sim']}\n{sim.log_tail()}")
        say("drive published; waiting for the snapshot to reach the cloud")
        segments = rig.wait_for_segments(cfg.expected_segments, cfg.timeout_s, [vehicle, cloud])
    except ProcessFailed as exc:
        raise DemoFailed(str(exc) + "\n" + "\n".join(p.log_tail(15) for p in procs)) from exc
    finally:
        for p in procs:
            codes.setdefault(p.name, p.stop())
    for name in ("vehicle", "cloud"):
        if codes[name] != 0:
            raise DemoFailed(f"{name} did not shut down cleanly (exit {codes[name]})")
    return DemoResult(rig.workdir, rig.cloud_dir, rig.vehicle_dir, rig.publish_log, rig.cloud_url, segments, codes)
