"""Fault injection on the whole loop: a flaky link, kill -9 of the vehicle and of the cloud mid-upload.

The run is the demo with three faults layered on it, each placed by watching real state rather than
by sleeping: the uploader talks to the cloud through ``avdata-hil link`` (a bandwidth cap and a cut
every few hundred kB); once the vehicle's queue shows upload progress, the vehicle service gets
SIGKILL and is started again; once progress resumes, the cloud daemon gets SIGKILL and is started
again on the same data directory. The promise under test: the snapshot arrives exactly once, whole.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.demo import DemoResult
from hil.errors import DemoFailed, ProcessFailed
from hil.procs import ManagedProcess, free_port
from hil.rig import DriveConfig, Rig, tool


@dataclass(frozen=True)
class FaultPlan:
    """``rate_kbps`` and ``cut_after_bytes`` shape the uploader's link; the kills happen once the
    vehicle's queue shows at least ``progress_bytes`` more uploaded than at the previous step."""

    rate_kbps: float = 6_000.0
    cut_after_bytes: int = 1_600_000
    progress_bytes: int = 1_000_000
    kill_vehicle: bool = True
    kill_cloud: bool = True


@dataclass(frozen=True)
class FaultConfig:
    workdir: Path
    drive: DriveConfig = field(default_factory=DriveConfig)
    plan: FaultPlan = field(default_factory=FaultPlan)
    timeout_s: float = 180.0


@dataclass(frozen=True)
class FaultResult:
    demo: DemoResult
    events: list[str]
    link_log: Path


def _wait_progress(rig: Rig, beyond: int, timeout_s: float, watch: list[ManagedProcess]) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in watch:
            if p.returncode is not None:
                raise ProcessFailed(f"{p.name} exited with {p.returncode}\n{p.log_tail()}")
        progress = rig.upload_progress()
        if progress is not None:
            state, got = progress
            if state == "done":
                raise ProcessFailed("the upload finished before the fault could be injected; slow the link down")
            if got >= beyond:
                return got
        time.sleep(0.05)
    raise ProcessFailed(f"upload made no progress past {beyond} bytes within {timeout_s:.0f} s")


def run_faults(cfg: FaultConfig, progress: Callable[[str], None] | None = None) -> FaultResult:
    """Run the faulted loop; raise :class:`DemoFailed` with logs when the promise is broken."""
    say = progress or (lambda msg: None)
    plan, d = cfg.plan, cfg.drive
    link_port = free_port()
    rig = Rig(cfg.workdir, d, upload_via_port=link_port)
    cloud, vehicle, sim = rig.cloud(), rig.vehicle(), rig.simulator()
    link = ManagedProcess("link", [tool("avdata-hil"), "link", "--listen", f"127.0.0.1:{link_port}",
                                   "--target", f"127.0.0.1:{rig.http_port}", "--rate-kbps", str(plan.rate_kbps),
                                   "--cut-after-bytes", str(plan.cut_after_bytes)], rig.workdir)
    procs: list[ManagedProcess] = [sim, vehicle, cloud, link]
    events: list[str] = []

    def note(msg: str) -> None:
        events.append(msg)
        say(msg)

    codes: dict[str, int] = {}
    try:
        cloud.start().wait_ready(30)
        link.start().wait_ready(30)
        vehicle.start().wait_ready(30)
        note(f"cloud on {rig.cloud_url}; vehicle uploads through a {plan.rate_kbps:.0f} kbit/s link "
             f"that cuts every {plan.cut_after_bytes} bytes")
        sim.start()
        reached = _wait_progress(rig, 1, cfg.timeout_s, [vehicle, cloud, link])
        # Each kill waits for more confirmed progress, then SIGKILLs one service and starts it again.
        steps = [("vehicle", "the vehicle service", plan.kill_vehicle, rig.vehicle),
                 ("cloud", "the cloud daemon", plan.kill_cloud, rig.cloud)]
        live = {"vehicle": vehicle, "cloud": cloud}
        for key, label, enabled, factory in steps:
            if not enabled:
                continue
            reached = _wait_progress(rig, reached + plan.progress_bytes, cfg.timeout_s, [*live.values(), link])
            live[key].signal(signal.SIGKILL)
            codes[f"{key} (killed)"] = live[key].wait(10)
            note(f"kill -9 of {label} at offset {reached}")
            live[key] = factory(f"{key}-restarted")
            procs.append(live[key])
            live[key].start().wait_ready(30)
        codes["sim"] = sim.wait(d.duration_s + 60)
        if codes["sim"] != 0:
            raise ProcessFailed(f"simulator exited with {codes['sim']}\n{sim.log_tail()}")
        segments = rig.wait_for_segments(1, cfg.timeout_s, [*live.values(), link])
        note(f"{len(segments)} segment(s) stored")
    except ProcessFailed as exc:
        raise DemoFailed(str(exc) + "\n" + "\n".join(p.log_tail(15) for p in procs)) from exc
    finally:
        for p in procs:
            codes.setdefault(p.name, p.stop())
    demo = DemoResult(rig.workdir, rig.cloud_dir, rig.vehicle_dir, rig.publish_log, rig.cloud_url, segments,
                      codes)
    return FaultResult(demo, events, link.log_path)


def summary(result: FaultResult) -> dict[str, Any]:
    return {"events": result.events, "segments": [s["segment_id"] for s in result.demo.segments]}
