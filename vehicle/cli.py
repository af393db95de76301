"""``avdata-vehicle``: the on-vehicle recorder and uploader.

Commands: ``run`` (recorder + uploader in one process), ``record`` and ``upload`` (the same two
halves as separate processes, for the systemd units), ``infer`` (the ``[inference]`` process:
camera frames in, ``model/scores`` out), ``queue ls`` (what waits to upload), ``replay``
(publish a real recording into a running recorder, as the sensor drivers would), and ``ood fit`` /
``ood score`` (fit the out-of-distribution reference offline from frames or a snapshot, and score
frames against it; :mod:`vehicle.inference.cli`). Every service command takes the same
``--config vehicle.toml``; for ``ood`` it is optional and only chooses the model.
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
from vehicle.config.inference import OOD_AUGMENTATIONS, OOD_SHRINKAGE, DetectorConfig
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
    _add_ood_parser(sub)
    return parser


def _add_ood_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # The parsers are here, the bodies in vehicle.inference.cli: importing that package loads
    # ONNX Runtime, which every other command would pay for at start.
    o = sub.add_parser("ood", help="the out-of-distribution reference, fitted offline",
                       description="Fit the out-of-distribution reference that [inference] ood_reference "
                                   "names, or score frames against one.")
    osub = o.add_subparsers(dest="ood_command", required=True)
    text = ("fit a reference from frames of one domain: mean, shrunk covariance and a threshold at a "
            "quantile of held-out distances, written as one versioned file")
    fit = osub.add_parser("fit", help=text, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                          description=f"{text}. Example: avdata-vehicle ood fit --frames data/front "
                                      "--out reference.avood --json")
    _add_source_arguments(fit)
    fit.add_argument("--out", type=Path, required=True, help="reference file to write, e.g. reference.avood")
    fit.add_argument("--quantile", type=float, default=0.99,
                     help="quantile of in-domain (out-of-fold) distances that sets the threshold")
    fit.add_argument("--augment", choices=list(OOD_AUGMENTATIONS), default="flip_crops",
                     help="extra views per frame: none; flip (mirror); flip_crops (mirror, 4 corner crops "
                          "of 85%% and their mirrors: 10 views)")
    fit.add_argument("--folds", type=int, default=8,
                     help="contiguous blocks of frames for the out-of-fold distances")
    fit.add_argument("--shrinkage", choices=list(OOD_SHRINKAGE), default="oas",
                     help="covariance shrinkage: oas (Chen et al. 2010) or lw (Ledoit-Wolf 2004)")
    text = "score frames against a reference: one line per frame (ood, ood_ratio, above the threshold)"
    score = osub.add_parser("score", help=text, description=text,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    score.add_argument("--reference", type=Path, required=True, help="a file written by `ood fit`")
    _add_source_arguments(score)


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=Path, action="append", default=[], metavar="DIR",
                   help="a directory of .jpg/.jpeg/.png frames (repeatable)")
    p.add_argument("--snapshot", type=Path, action="append", default=[], metavar="FILE.mcap",
                   help="a recorded snapshot whose H.265/H.264 camera channels are decoded (repeatable)")
    p.add_argument("--topic", default="camera/", help="topic prefix of the snapshot channels to use")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="keep every N-th decoded frame of each snapshot topic")
    p.add_argument("--config", type=Path, default=None,
                   help="vehicle TOML whose [inference.model] the car runs (default: the bundled model)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its own choice)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _ood(args: argparse.Namespace) -> int:
    """``ood fit`` / ``ood score``: the model comes from ``--config`` when given."""
    model = DetectorConfig()
    if args.config is not None:
        cfg = load_config(args.config)
        if cfg.inference is not None:
            model = cfg.inference.model
    # Imported here: only this command needs ONNX Runtime (as for infer below).
    from vehicle.inference import cli as ood_cli

    return ood_cli.fit(args, model) if args.ood_command == "fit" else ood_cli.score(args, model)


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
        if args.command == "ood":
            return _ood(args)
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
