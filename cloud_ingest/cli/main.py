"""``avdata-cloud``: run the ingest daemon, manage vehicle credentials, inspect segments."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.api.query import build_query, encode_cursor
from cloud_ingest.api.read import segment_json
from cloud_ingest.app import create_app, make_runner
from cloud_ingest.cli import admin as cli_admin
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import IngestError
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared import logs
from shared.config import ConfigError, load
from shared.sdnotify import Notifier

log = logging.getLogger("cloud_ingest")


def _config(args: argparse.Namespace) -> CloudConfig:
    overrides: dict[str, Any] = {"data_dir": str(args.data_dir)} if args.data_dir else {}
    for key in ("host", "port"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "nats", None):
        overrides["relay"] = {"nats_url": args.nats}
    return load(CloudConfig, args.config, overrides)


def _db(cfg: CloudConfig) -> SQLMetadataDB:
    return open_db(cfg.db.backend, sqlite_path=str(cfg.sqlite_path), dsn=cfg.db.dsn, schema=cfg.db.schema)


AppFactory = Callable[[CloudConfig], web.Application]
#: Adds subcommands to ``avdata-cloud``: ``(subparsers, common)``, ``common`` adding --data-dir/--config.
Extension = Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]


async def serve(cfg: CloudConfig, notifier: Notifier, app_factory: AppFactory = create_app) -> int:
    """Listen until SIGTERM/SIGINT, then stop accepting, drain in-flight requests and close."""
    runner = make_runner(app_factory(cfg), handle_signals=False, shutdown_timeout=30.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
    log.info("listening", extra={"addresses": addresses, "data_dir": str(cfg.data_dir)})
    notifier.ready(status=f"listening on {', '.join(addresses)}")
    interval = notifier.watchdog_interval_s()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval or 3600.0)
        except TimeoutError:
            notifier.watchdog()
    notifier.stopping()
    log.info("stopping: draining requests")
    await runner.cleanup()
    log.info("stopped")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    cfg = _config(args)
    logs.setup("avdata-cloud", cfg.log_level)
    return asyncio.run(serve(cfg, Notifier(), args.app_factory))


def _cmd_vehicles(args: argparse.Namespace) -> int:
    db = _db(_config(args))
    try:
        if args.action == "ls":
            for v in db.list_vehicles():
                print(f"{v.vehicle_id}\tcreated_ns={v.created_ns}\trotated_ns={v.rotated_ns}")
            return 0
        token = auth.register(db, args.vehicle_id) if args.action == "add" else auth.rotate(db, args.vehicle_id)
        print(token)
        return 0
    finally:
        db.close()


def _cmd_segments(args: argparse.Namespace) -> int:
    db = _db(_config(args))
    try:
        if args.action == "ls":
            q = build_query(vehicle=args.vehicle, since=args.since, until=args.until, trigger=args.trigger,
                            tag=args.tag, limit=args.limit, cursor=args.cursor,
                            include_superseded=args.superseded)
            rows, cursor = db.query_segments(q)
            if args.json:
                print(json.dumps({"segments": [segment_json(r, full=False) for r in rows],
                                  "next_cursor": encode_cursor(cursor)}, indent=2))
            else:
                for r in rows:
                    print(f"{r.segment_id}\t{r.vehicle_id}\t{r.start_ns}\t{r.end_ns}\t"
                          f"{(r.end_ns - r.start_ns) / 1e9:.1f}s\t{r.raw_key}")
                if cursor is not None:
                    print(f"more: --cursor {encode_cursor(cursor)}", file=sys.stderr)
            return 0
        row = db.get_segment(args.segment_id)
        if row is None:
            print(f"no segment with id {args.segment_id}", file=sys.stderr)
            return 1
        doc = segment_json(row, full=True)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            seg = doc["segment"]
            print(f"segment   {row.segment_id}\nvehicle   {row.vehicle_id}\n"
                  f"window    {row.start_ns} .. {row.end_ns} ({(row.end_ns - row.start_ns) / 1e9:.1f} s)\n"
                  f"snapshot  {row.snapshot_id} sha256={row.snapshot_sha256}\nraw       {row.raw_key}\n"
                  f"triggers  {', '.join(t['kind'] for t in seg['triggers']) or '-'}")
            for group in ("camera_frames", "lidar_sweeps", "radar_returns", "vehicle_states", "other_streams"):
                for s in seg[group]:
                    print(f"stream    {s['topic']:<16} {s['encoding']:<18} count={s['count']}")
        return 0
    finally:
        db.close()


def _cmd_relay(args: argparse.Namespace) -> int:
    from cloud_ingest.queue.relay import serve_relay

    cfg = _config(args)
    logs.setup("avdata-cloud-relay", cfg.log_level)
    return asyncio.run(serve_relay(cfg, Notifier()))


def build_parser(app_factory: AppFactory = create_app, extensions: Sequence[Extension] = ()) -> argparse.ArgumentParser:
    """The ``avdata-cloud`` parser. ``serve`` runs the app ``app_factory`` builds; each of ``extensions``
    adds its subcommands (the downstream services register theirs this way, so that this package
    never imports them)."""
    p = argparse.ArgumentParser(prog="avdata-cloud", description=(
        "Cloud ingest daemon: receives snapshot uploads from vehicles over tus 1.0.0, checks them, "
        "cuts segments, stores raw data and records metadata."))
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", type=Path, help="daemon data directory (DB, uploads, object store)")
        sp.add_argument("--config", type=Path, help="cloud.toml; --data-dir and flags override it")

    s = sub.add_parser("serve", help="run the HTTP daemon (READY=1 to systemd once listening)")
    common(s)
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    s.set_defaults(func=_cmd_serve, app_factory=app_factory)

    r = sub.add_parser("relay", help="publish the outbox to NATS JetStream (READY=1 once the stream exists)")
    common(r)
    r.add_argument("--nats", help="NATS server URL (default nats://127.0.0.1:4222)")
    r.set_defaults(func=_cmd_relay)

    v = sub.add_parser("vehicles", help="register vehicles and manage their tokens")
    vsub = v.add_subparsers(dest="action", required=True)
    for action, text in (("add", "register a vehicle; prints ONLY its new token"),
                         ("rotate", "replace a vehicle's token; prints ONLY the new token")):
        a = vsub.add_parser(action, help=text)
        a.add_argument("vehicle_id")
        common(a)
    common(vsub.add_parser("ls", help="list registered vehicles"))
    v.set_defaults(func=_cmd_vehicles)

    g = sub.add_parser("segments", help="inspect ingested segments")
    gsub = g.add_subparsers(dest="action", required=True)
    ls = gsub.add_parser("ls", help="list segments, newest first")
    common(ls)
    ls.add_argument("--vehicle", help="only this vehicle's segments")
    ls.add_argument("--since", help="overlapping this time or later (ISO 8601, e.g. 2023-11-14T22:00:00Z, or ns)")
    ls.add_argument("--until", help="overlapping before this time (ISO 8601 or ns)")
    ls.add_argument("--trigger", help="only segments with a trigger of this kind (e.g. hard_brake)")
    ls.add_argument("--tag", help="only segments with this tag")
    ls.add_argument("--cursor", help="continue after the page that printed this cursor")
    ls.add_argument("--superseded", action="store_true", help="include segments replaced by joined ones")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (1-1000, default 100)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = gsub.add_parser("show", help="show one segment in full")
    show.add_argument("segment_id")
    common(show)
    show.add_argument("--json", action="store_true", help="print the whole segment record as JSON")
    g.set_defaults(func=_cmd_segments)
    cli_admin.add_commands(sub, common, lambda a: _db(_config(a)))
    for extend in extensions:
        extend(sub, common)
    return p


def main(argv: list[str] | None = None, app_factory: AppFactory = create_app,
         extensions: Sequence[Extension] = ()) -> int:
    """Entry point of ``avdata-cloud``; returns the process exit status."""
    args = build_parser(app_factory, extensions).parse_args(argv)
    if args.data_dir is None and args.config is None:
        print("avdata-cloud: give --data-dir or --config", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except (ConfigError, IngestError) as exc:
        print(f"avdata-cloud: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
