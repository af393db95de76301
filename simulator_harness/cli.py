"""``avdata-sim``: the simulator harness on the command line.

Subcommands live in :data:`COMMANDS` (name → help, argument builder, handler), so a new one is a
new entry there. Exit codes: 0 done, 1 simulator failure, 2 bad arguments, 3 no subscriber came.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from shared import logs
from simulator_harness.drive import DriveParams
from simulator_harness.errors import NoSubscriber, SimConfigError, SimulatorError
from simulator_harness.publisher import PublishConfig, Publisher
from simulator_harness.sensors.rig import demo_rig

log = logging.getLogger("simulator_harness.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SUBSCRIBER = 0, 1, 2, 3


class Command(NamedTuple):
    """One subcommand: its one-line help, how it adds its arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    description: str = ""


def _add_publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", required=True,
                   help="ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:5555 (the vehicle connects to it)")
    p.add_argument("--duration-s", type=float, default=14.0, help="length of the drive in seconds (14)")
    p.add_argument("--brake-at-s", type=float, default=9.0,
                   help="when the ego brakes hard, in seconds from the start (9); the lead car brakes "
                        "0.6 s earlier")
    p.add_argument("--log", type=Path, default=None, metavar="PATH",
                   help='publish log: one JSON line per message {"topic","seq","t_sensor_ns",'
                        '"keyframe","bytes"}')
    p.add_argument("--seed", type=int, default=0, help="seed of the sensor noise (0)")
    p.add_argument("--wait-subscriber-s", type=float, default=10.0,
                   help="how long to wait for a first subscriber before giving up with exit code 3 "
                        "(10; 0 publishes at once)")
    p.add_argument("--width", type=int, default=640, help="camera width in pixels, even (640)")
    p.add_argument("--height", type=int, default=360, help="camera height in pixels, even (360)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="level of the JSON logs on stderr (info)")


def _publish(args: argparse.Namespace) -> int:
    logs.setup("avdata-sim", args.log_level)
    drive = DriveParams(brake_at_s=args.brake_at_s)
    config = PublishConfig(endpoint=args.endpoint, duration_s=args.duration_s, log_path=args.log,
                           wait_subscriber_s=args.wait_subscriber_s)
    sensors = demo_rig(drive, seed=args.seed, width_px=args.width, height_px=args.height)
    with Publisher(sensors, config) as publisher:
        def on_signal(signum: int, _frame: object) -> None:
            publisher.request_stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info("waiting for a subscriber", extra={"endpoint": publisher.endpoint})
            summary = publisher.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print(summary.format(), flush=True)
    log.info("published", extra={"messages": summary.messages, "wall_s": round(summary.wall_s, 3),
                                 "cpu_s": round(summary.cpu_s, 3), "stopped_early": summary.stopped_early})
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "publish": Command(
        "publish the synthetic demo drive (camera H.265, LiDAR, IMU, GNSS, vehicle state) over ZeroMQ",
        _add_publish_arguments, _publish,
        "Bind a ZeroMQ XPUB on --endpoint, wait until a subscriber (the vehicle recorder) has "
        "subscribed, then publish the demo drive at real rates: camera/front (H.265, 30 fps, a "
        "keyframe every second), lidar/top (10 Hz), imu (200 Hz), vehicle_state (50 Hz) and gnss "
        "(10 Hz). The ego cruises at 15 m/s behind a lead car and brakes hard (-6 m/s²) at "
        "--brake-at-s. t_sensor_ns is the wall clock at capture. Prints messages, bytes, lateness "
        "and CPU per topic at the end; SIGTERM or Ctrl-C stops early and still writes the log."),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``avdata-sim`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="avdata-sim",
        description="Simulator harness: synthetic sensors for the demo drive and simulation tools.",
        epilog="exit codes: 0 done, 1 simulator failure, 2 bad arguments, 3 no subscriber came",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.description or command.help)
        command.add_arguments(child)
        child.set_defaults(handler=command.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``avdata-sim``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except NoSubscriber as exc:
        print(f"avdata-sim: {exc}", file=sys.stderr)
        return EXIT_NO_SUBSCRIBER
    except SimConfigError as exc:
        print(f"avdata-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SimulatorError as exc:
        print(f"avdata-sim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
