"""``avdata-vehicle``: the on-vehicle recorder and uploader.

Commands: ``run`` (recorder + uploader in one process), ``record`` and ``upload`` (the same two
halves as separate processes, for the systemd units), ``infer`` (the ``[inference]`` process:
camera frames in, ``model/scores`` out), ``queue ls`` (what waits to upload), and ``replay``
(publish a real recording into a running recorder, as the sensor drivers would). Every service
command takes the same ``--config vehicle.toml``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from shared import logs
from shared.config import ConfigError
from vehicle.config.tree import VehicleConfig, load_config
from vehicle.errors import MetricsPortError, VehicleError
from vehicle.replay import cli as replay_cli
from vehicle.service import VehicleService
from vehicle.upload.queue import UploadQueue


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avdata-vehicle",
        description="On-vehicle service: buffer sensor streams, cut snapshots on triggers, upload them.")
    parser.add_argument("--log-level", default=None,
                        help="debug, info, warning or error (default info; for infer, [inference] log_level)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "record and upload in one process"),
                       ("record", "only subscribe, buffer, trigger and write snapshots"),
                       ("upload", "only upload queued snapshots"),
                       ("infer", "only score camera frames and publish model/scores ([inference])")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", type=Path, required=True, help="vehicle TOML file")
    q = sub.add_parser("queue", help="inspect the upload queue")
    qsub = q.add_subparsers(dest="queue_command", required=True)
    ls = qsub.add_parser("ls", help="list queued snapshots in upload order")
    ls.add_argument("--config", type=Path, required=True, help="vehicle TOML file")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    replay_cli.add_parser(sub)
    return parser


async def _serve(service: VehicleService) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await service.run(stop)


def _queue_ls(cfg: VehicleConfig, as_json: bool) -> int:
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    try:
        for e in queue.entries():
            if as_json:
                print(json.dumps(asdict(e)))
            else:
                print(f"{e.state:<9} prio={e.priority:<4} {e.size_bytes:>12} B "
                      f"offset={e.offset_bytes:<12} {e.file_name} {e.reason}")
    finally:
        queue.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code: 2 for a bad command line or configuration, 1 when the
    service cannot start or stops on a failure (e.g. its metrics port is taken)."""
    args = _parser().parse_args(argv)
    logs.setup("avdata-vehicle", args.log_level or "info")
    try:
        cfg = load_config(args.config)
        if args.command == "queue":
            return _queue_ls(cfg, args.json)
        if args.command == "replay":
            return replay_cli.run(cfg, args)
        if args.command == "infer":
            if cfg.inference is None:
                raise VehicleError(f"{args.config.name}: no [inference] table: nothing to run")
            logs.setup("avdata-vehicle-inference", args.log_level or cfg.inference.log_level)
            # Imported here: only this process needs ONNX Runtime (+0.3 s at every start).
            from vehicle.inference import process as inference

            return inference.serve(cfg.inference, metrics_host=cfg.metrics.host,
                                   metrics_port=cfg.metrics.inference_port, prog="avdata-vehicle")
        service = VehicleService(cfg, record=args.command in ("run", "record"),
                                 upload=args.command in ("run", "upload"))
    except (ConfigError, VehicleError) as exc:
        print(f"avdata-vehicle: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(service))
    except MetricsPortError as exc:
        print(f"avdata-vehicle: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
