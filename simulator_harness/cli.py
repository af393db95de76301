"""``avdata-sim``: the simulator harness on the command line.

Subcommands live in :data:`COMMANDS` (name → help, argument builder, handler), so a new one is a
new entry there. Exit codes: 0 done, 1 simulator failure, 2 bad arguments, 3 no subscriber came,
4 a regression (a scenario that passed in the baseline fails).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from shared import logs
from simulator_harness.drive import DriveParams
from simulator_harness.errors import CoverageError, NoSubscriber, SimConfigError, SimulatorError
from simulator_harness.modes import commands
from simulator_harness.modes.evaluate import policy
from simulator_harness.modes.regress import suite_files
from simulator_harness.publisher import PublishConfig, Publisher
from simulator_harness.scenario import ScenarioError, load, taxonomy_cell
from simulator_harness.sensors.base import Sensor
from simulator_harness.sensors.rig import demo_calibration, demo_rig
from simulator_harness.sensors.scene_rig import rollout_track, scene_rig
from simulator_harness.sensors.suite import full_suite
from simulator_harness.stats import coverage

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
    p.add_argument("--width", type=int, default=None,
                   help="camera width in pixels, even (640 for the demo suite, 320 for the full one)")
    p.add_argument("--height", type=int, default=None,
                   help="camera height in pixels, even (360 for the demo suite, 180 for the full one)")
    p.add_argument("--suite", choices=("demo", "full"), default="demo",
                   help="demo: one camera, LiDAR, IMU, GNSS, vehicle state; full: 8 cameras (encoded once and "
                        "looped), 3 LiDARs, 5 radars, IMU, RTK GNSS, vehicle state with disengagement (demo)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="level of the JSON logs on stderr (info)")


def _publish(args: argparse.Namespace) -> int:
    logs.setup("avdata-sim", args.log_level)
    drive = DriveParams(brake_at_s=args.brake_at_s)
    sensors: Sequence[Sensor]
    if args.suite == "full":
        sensors = full_suite(drive, seed=args.seed, width_px=args.width or 320, height_px=args.height or 180)
    else:
        sensors = demo_rig(drive, seed=args.seed, width_px=args.width or 640, height_px=args.height or 360)
    return _run_publisher(sensors, args, args.duration_s)


def _add_drive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", type=Path, required=True, help="scenario spec (.toml or .json) to drive")
    p.add_argument("--endpoint", required=True, help="ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--policy", choices=("idm", "blind"), default="idm", help="ego policy in the loop (idm)")
    p.add_argument("--log", type=Path, default=None, metavar="PATH", help="publish log, as for publish")
    p.add_argument("--seed", type=int, default=0, help="seed of the sensor noise (0)")
    p.add_argument("--wait-subscriber-s", type=float, default=10.0,
                   help="how long to wait for a first subscriber before exit code 3 (10; 0: at once)")
    p.add_argument("--width", type=int, default=640, help="camera width in pixels, even (640)")
    p.add_argument("--height", type=int, default=360, help="camera height in pixels, even (360)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="level of the JSON logs on stderr (info)")


def _drive(args: argparse.Namespace) -> int:
    logs.setup("avdata-sim", args.log_level)
    spec = load(args.scenario)
    track = rollout_track(spec, policy(args.policy))
    sensors = scene_rig(track, spec.road, seed=args.seed, width_px=args.width, height_px=args.height)
    return _run_publisher(sensors, args, track.duration_s)


def _run_publisher(sensors: Sequence[Sensor], args: argparse.Namespace, duration_s: float) -> int:
    config = PublishConfig(endpoint=args.endpoint, duration_s=duration_s, log_path=args.log,
                           wait_subscriber_s=args.wait_subscriber_s)
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


def _add_coverage_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specs", type=Path, required=True, help="a directory of .toml/.json specs (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="heatmap PNG to write")
    p.add_argument("--axes", default="road_geometry,manoeuvre",
                   help="two ODD axes for the heatmap, x then y (road_geometry,manoeuvre)")
    p.add_argument("--json", type=Path, default=None, help="also write counts and every uncovered cell as JSON")


def _coverage(args: argparse.Namespace) -> int:
    axes = [a.strip() for a in args.axes.split(",")]
    if len(axes) != 2:
        raise SimConfigError(f"--axes: name exactly two ODD axes, got {args.axes!r}")
    odd = coverage.DEFAULT_TAXONOMY
    cells, bad = [], []
    for path in suite_files(args.specs):
        try:
            cells.append(taxonomy_cell(load(path)))
        except ScenarioError as exc:  # a bad spec is counted and named; the rest are still counted
            bad.append(f"{path.name}: {exc}")
    counts = coverage.count_cells(odd, cells).counts
    coverage.write_heatmap(args.out, odd, counts, axes[0], axes[1])
    grid = coverage.project(odd, counts, axes[0], axes[1])
    xs, ys = (odd.axes[odd.axis_index(a)].values for a in axes)
    empty = [f"{axes[0]}={xs[j]}, {axes[1]}={ys[i]}" for i in range(len(ys)) for j in range(len(xs)) if grid[i, j] == 0]
    print(f"coverage: {len(cells)} specs ({len(bad)} rejected); full ODD {coverage.covered_fraction(counts):.2%} "
          f"of {odd.n_cells} cells; {axes[0]} x {axes[1]} {float((grid > 0).mean()):.2%} of {grid.size} cells")
    for key, n in sorted(_cell_counts(cells).items()):
        print(f"  {n:5d}  {key}")
    print(f"uncovered {axes[0]} x {axes[1]} cells ({len(empty)}):", *[f"  {e}" for e in empty], sep="\n")
    for reason in bad:
        print(f"rejected {reason}", file=sys.stderr)
    if args.json is not None:
        doc = {"specs": len(cells), "rejected": bad, "covered_fraction": coverage.covered_fraction(counts),
               "cells": _cell_counts(cells), "uncovered_projection": empty,
               "uncovered": ["/".join(c) for c in coverage.uncovered_cells(odd, counts)]}
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"heatmap -> {args.out}", flush=True)
    return EXIT_OK


def _add_calibration_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vehicle", required=True, help="vehicle id the bundle is for")
    p.add_argument("--out", type=Path, required=True, help="file to write (an avdata.CalibrationBundle envelope)")
    p.add_argument("--version", default="sim-rig-1", help="calibration version name")


def _calibration(args: argparse.Namespace) -> int:
    bundle = replace(demo_calibration(args.vehicle, valid_from_ns=0), version=args.version)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(bundle.encode())
    tmp.replace(args.out)
    print(f"{bundle.vehicle_id}\t{bundle.version}\tcameras={len(bundle.cameras)}\tsensors={len(bundle.extrinsics)}"
          f"\t-> {args.out}")
    return 0


def _cell_counts(cells: list[tuple[str, ...]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cell in cells:
        out["/".join(cell)] = out.get("/".join(cell), 0) + 1
    return out


COMMANDS: dict[str, Command] = {
    "publish": Command(
        "publish the synthetic demo drive (camera H.265, LiDAR, IMU, GNSS, vehicle state) over ZeroMQ",
        _add_publish_arguments, _publish,
        "Bind a ZeroMQ XPUB on --endpoint, wait until a subscriber (the vehicle recorder) has "
        "subscribed, then publish the demo drive at real rates: camera/front (H.265, 30 fps, a "
        "keyframe every second), lidar/top (10 Hz), imu (200 Hz), vehicle_state (50 Hz) and gnss "
        "(10 Hz). The ego cruises at 15 m/s behind a lead car and brakes hard (-6 m/s²) at "
        "--brake-at-s. t_sensor_ns is the wall clock at capture. Prints messages, bytes, lateness "
        "and CPU per topic at the end; SIGTERM or Ctrl-C stops early and still writes the log. "
        "--suite full publishes the seed suite instead (8 cameras, 3 LiDARs, 5 radars, IMU, RTK GNSS, "
        "vehicle state)."),
    "drive": Command(
        "simulate a scenario closed-loop and publish its synthetic sensors over ZeroMQ at real rates",
        _add_drive_arguments, _drive,
        "Roll the scenario out closed-loop with the ego policy, then publish what the ego saw at real "
        "rates: camera/front (H.265), lidar/top and radar/front (ray-cast against the agents' oriented "
        "boxes, radar with Doppler), imu, gnss and vehicle_state, like publish does for the demo drive."),
    "regress": Command("run a frozen regression suite and compare it with a baseline report",
                       commands.add_regress, commands.run_regress),
    "search": Command("search for failures around a seed scenario (cross-entropy toward small TTC)",
                      commands.add_search, commands.run_search),
    "risk": Command("importance-sampled failure probability of a scenario, beside plain Monte Carlo",
                    commands.add_risk, commands.run_risk),
    "seed": Command("turn real recordings into scenario specs (seed import FILE.xml --out SPEC.toml)",
                    commands.add_seed, commands.run_seed_import),
    "coverage": Command("count specs per ODD cell, list uncovered cells and write a heatmap PNG",
                        _add_coverage_arguments, _coverage),
    "calibration": Command(
        "write the calibration of the synthetic sensor rig (for avdata-cloud calib import --format avdata)",
        _add_calibration_arguments, _calibration,
        "Write the camera intrinsics and the camera and LiDAR extrinsics of the demo rig as an "
        "avdata.CalibrationBundle envelope, valid from t=0, so the cloud can attach it to the demo's "
        "segments and motion-compensate its LiDAR."),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``avdata-sim`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="avdata-sim",
        description="Simulator harness: synthetic sensors for the demo drive and simulation tools.",
        epilog="exit codes: 0 done, 1 simulator failure, 2 bad arguments, 3 no subscriber came, 4 regression",
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
    except (SimConfigError, ScenarioError, CoverageError) as exc:  # bad arguments or input files
        print(f"avdata-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SimulatorError as exc:
        print(f"avdata-sim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
