"""``avdata-vehicle replay``: publish a real recording into the running recorder.

The endpoint defaults to the first of the config's ``[sources] endpoints`` (the recorder
connects there; the replay binds it, as a sensor driver would). The summary of what was
published is printed as one JSON object on stdout; a progress bar goes to stderr on a terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vehicle.config.tree import VehicleConfig
from vehicle.replay.comma2k19 import ReplaySourceError
from vehicle.replay.publish import Replayer, load_source

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``replay`` subcommand on the ``avdata-vehicle`` parser."""
    text = "publish a real recording into the running recorder over ZeroMQ, at its recorded rates"
    p = sub.add_parser("replay", help=text, description=text)
    p.add_argument("--config", type=Path, required=True, help="vehicle TOML file")
    p.add_argument("--source", required=True, help="KIND:PATH, e.g. comma2k19:path/to/segment")
    p.add_argument("--speed", type=float, default=1.0,
                   help="playback speed factor (1.0 is real time); timestamps stay in recording time")
    p.add_argument("--endpoint", default="",
                   help="ZeroMQ endpoint to bind (default: the first of [sources] endpoints)")
    p.add_argument("--wait-s", type=float, default=30.0, help="how long to wait for the recorder to subscribe")


def check_speed(cfg: VehicleConfig, speed: float) -> None:
    """Refuse what would silently distort the recording; raises :class:`ReplaySourceError`.

    With ``[timesync] correct = true`` the recorder maps sensor times onto its own clock through
    the fitted offset ``t_recv - t_sensor``; replayed at speed k that offset shrinks by
    (1 - 1/k) s per recorded second, so the fit would compress the drive k-fold in time.
    """
    if speed <= 0:
        raise ReplaySourceError(f"--speed must be > 0, got {speed!r}")
    if speed != 1.0 and cfg.timesync.correct:
        raise ReplaySourceError(
            f"--speed {speed:g} needs [timesync] correct = false in {cfg.vehicle_id}'s config: with clock "
            "correction on, the recorder would fit the replay's wall-clock pace and compress the drive "
            "in time; replay at --speed 1 or turn the correction off")


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("replay", total=total)
        yield lambda n: bar.advance(task, n)


def run(cfg: VehicleConfig, args: argparse.Namespace) -> int:
    """Body of ``avdata-vehicle replay``; raises :class:`vehicle.errors.VehicleError` subclasses."""
    check_speed(cfg, args.speed)
    messages = load_source(args.source)
    endpoint = args.endpoint or cfg.sources.endpoints[0]
    with Replayer(endpoint) as replayer:
        log.info("waiting for the recorder to subscribe", extra={"endpoint": replayer.endpoint})
        replayer.wait_subscriber(args.wait_s)
        log.info("replaying", extra={"source": args.source, "messages": len(messages), "speed": args.speed})
        try:
            with _progress(len(messages), sys.stderr.isatty()) as advance:
                report = replayer.publish(messages, args.speed, progress=advance)
        except KeyboardInterrupt:
            log.warning("replay interrupted")
            return 130
    log.info("replay finished", extra=report.to_json())
    print(json.dumps(report.to_json()), flush=True)
    return 0
