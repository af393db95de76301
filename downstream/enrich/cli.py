"""``avdata-cloud enrich``: run the enrichment service, show a segment's enrichment, report status.

- ``enrich run``: the service (what systemd runs; ``--until-idle`` and ``--once`` end it, for
  backfills, tests and the demo); ``--segment ID`` (repeatable) and ``--failed`` enrich directly,
  without the queue: the given segments, or those this version recorded as failed.
- ``enrich show SEGMENT``: the latest version's enrichment (``--version N`` another), tags with
  source and confidence; ``--json`` (``--embeddings`` adds the vectors).
- ``enrich status``: per version, segments enriched and failed by reason; the queue backlog of
  this version's consumer on the outbox.

Each takes the daemon's ``--config cloud.toml`` / ``--data-dir`` and ``--enrich-config
enrich.toml`` (:mod:`.config`). Long work shows a progress bar on stderr when it is a terminal.
Exit status 2 is a bad configuration (systemd does not restart on it), 1 another failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cloud_ingest.config import CloudConfig
from shared import logs
from shared.config import ConfigError, load

CommonArgs = Callable[[argparse.ArgumentParser], None]


def _cloud(args: argparse.Namespace) -> CloudConfig:
    overrides: dict[str, Any] = {"data_dir": str(args.data_dir)} if args.data_dir else {}
    if getattr(args, "nats", None):
        overrides["relay"] = {"nats_url": args.nats}
    return load(CloudConfig, args.config, overrides)


def _enrich(args: argparse.Namespace) -> Any:
    from downstream.enrich.config import load_enrich_config

    overrides = {k: v for k, v in (("queue", getattr(args, "queue", None)),
                                   ("metrics_port", getattr(args, "metrics_port", None)),
                                   ("version", getattr(args, "enricher_version", None))) if v is not None}
    return load_enrich_config(args.enrich_config, overrides)


@contextlib.contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[str], None]]:
    """A bar on stderr when it is a terminal; else nothing (the JSON log says what happened)."""
    if not sys.stderr.isatty():
        yield lambda outcome: None
        return
    columns = [TextColumn(f"{label} [progress.description]{{task.description}}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=total)
        yield lambda outcome: bar.update(task, advance=1, description=outcome)


def _backlog(rt: Any) -> int | None:
    if rt.cfg.queue != "outbox":
        return None
    offset = rt.db.get_consumer_offset(rt.cfg.consumer_name)
    with rt.db.transaction() as tx:
        return int(tx.run("SELECT COUNT(*) FROM outbox WHERE outbox_offset > ?", (offset,))[0][0])


def _cmd_run(args: argparse.Namespace) -> int:
    from downstream.enrich.errors import EnrichError
    from downstream.enrich.process import serve_enrich
    from downstream.enrich.runtime import enrich_now, open_runtime
    from downstream.enrich.store import failures
    from shared.sdnotify import Notifier

    try:
        cloud, cfg = _cloud(args), _enrich(args)
        logs.setup("avdata-cloud-enrich", cloud.log_level)
        rt = open_runtime(cloud, cfg)
    except (ConfigError, EnrichError) as exc:
        print(f"avdata-cloud enrich: {exc}", file=sys.stderr)
        return 2
    try:
        if args.segment or args.failed:
            ids = list(args.segment or []) + ([f[0] for f in failures(rt.db, cfg.version)] if args.failed else [])
            with _progress("enriching", len(ids)) as advance:
                done = enrich_now(rt, ids, lambda sid, outcome: advance(outcome))
            print(json.dumps(done, indent=1) if args.json else
                  "\n".join(f"{sid}\t{outcome}" for sid, outcome in done.items()))
            return 0 if all(not o.startswith("failed") for o in done.values()) else 1
        with _progress("enriching", _backlog(rt)) if args.until_idle else contextlib.nullcontext(None) as advance:
            return asyncio.run(serve_enrich(rt, Notifier(), until_idle=args.until_idle, once=args.once,
                                            on_done=advance))
    finally:
        rt.close()


def _vector_doc(name: str, v: Any, embeddings: bool) -> dict[str, Any]:
    if v is None:
        return {f"{name}_dim": None}
    return {f"{name}_dim": int(v.shape[0]), **({name: [float(x) for x in v]} if embeddings else {})}


def _cmd_show(args: argparse.Namespace) -> int:
    from downstream.enrich.store import get_enrichment

    db = _open_db(args)
    try:
        e = get_enrichment(db, args.segment_id, args.enricher_version)
    finally:
        db.close()
    if e is None:
        which = f"version {args.enricher_version}" if args.enricher_version else "any version"
        print(f"no enrichment of segment {args.segment_id} ({which}); is 'avdata-cloud enrich run' running?",
              file=sys.stderr)
        return 1
    doc = {"segment_id": e.segment_id, "enricher_version": e.enricher_version, "fingerprint": e.fingerprint,
           "vehicle_id": e.vehicle_id, "start_ns": e.start_ns, "end_ns": e.end_ns, "source": e.source,
           "description": e.description, "describer": e.describer, "visual_frames": e.visual_frames,
           "visual_source": e.visual_source, **_vector_doc("visual_embedding", e.visual_embedding, args.embeddings),
           **_vector_doc("bev_embedding", e.bev_embedding, args.embeddings),
           **_vector_doc("image_text_embedding", e.image_text_embedding, args.embeddings),
           "map": e.map_summary, "tags": [{"name": n, "value": v, "source": s, "confidence": c}
                                          for n, v, s, c in e.tags],
           "problems": e.problems, "output_key": e.output_key, "enriched_ns": e.enriched_ns}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    m = e.map_summary
    where = (f"{m.get('map_id')} ({m.get('lanes')} lanes, {m.get('crosswalks')} crosswalks, "
             f"{m.get('traffic_lights')} traffic lights)" if e.map_covered else f"not covered ({m.get('source')})")
    print(f"segment   {e.segment_id}  v{e.enricher_version} ({e.fingerprint})\n"
          f"vehicle   {e.vehicle_id}  {(e.end_ns - e.start_ns) / 1e9:.1f} s from {e.start_ns}  {e.source}\n"
          f"describe  {e.description}\n"
          f"visual    {doc['visual_embedding_dim'] or '-'}-d from {e.visual_frames} frames ({e.visual_source or '-'})\n"
          f"bev       {doc['bev_embedding_dim'] or '-'}-d\nmap       {where}\noutput    {e.output_key}")
    for n, v, s, c in e.tags:
        print(f"tag       {n + ':' + v:<32} {s:<14} {c:.2f}")
    for p in e.problems:
        print(f"problem   {p['reason']}: {p['detail']}")
    return 0


def _open_db(args: argparse.Namespace) -> Any:
    from cloud_ingest.storage.metadata.registry import open_db
    from downstream.enrich.store import migrate_enrich

    cloud = _cloud(args)
    db = open_db(cloud.db.backend, sqlite_path=str(cloud.sqlite_path), dsn=cloud.db.dsn, schema=cloud.db.schema)
    migrate_enrich(db)
    return db


def _cmd_status(args: argparse.Namespace) -> int:
    from downstream.enrich.store import status

    cfg = _enrich(args)
    db = _open_db(args)
    try:
        doc = status(db)
        offset = db.get_consumer_offset(cfg.consumer_name)
        with db.transaction() as tx:
            doc["outbox_backlog"] = {cfg.consumer_name: int(tx.run(
                "SELECT COUNT(*) FROM outbox WHERE outbox_offset > ?", (offset,))[0][0])}
    finally:
        db.close()
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"live segments   {doc['live_segments']}")
    for v in doc["versions"]:
        failed = ", ".join(f"{r} {n}" for r, n in v["failed"].items()) or "none"
        print(f"v{v['version']:<14} enriched {v['enriched']}, failed: {failed}  ({v['fingerprint']})")
    for name, n in doc["outbox_backlog"].items():
        print(f"outbox backlog  {name}: {n}")
    return 0


def add_commands(sub: Any, common: CommonArgs) -> None:
    """Add ``enrich run|show|status`` to the ``avdata-cloud`` parser (an entry of ``downstream.cli.EXTENSIONS``)."""
    e = sub.add_parser("enrich", help="segment enrichment: embeddings, tags, description, map context")
    esub = e.add_subparsers(dest="action", required=True)

    def both(sp: argparse.ArgumentParser) -> None:
        common(sp)
        sp.add_argument("--enrich-config", type=Path, help="enrich.toml with the [enrich] table (default: defaults)")

    r = esub.add_parser("run", help="consume segments.raw and enrich each segment (READY=1 to systemd once ready)")
    both(r)
    r.add_argument("--queue", choices=("outbox", "nats"), help="feed to consume (overrides [enrich] queue)")
    r.add_argument("--nats", help="NATS server URL (overrides [relay] nats_url)")
    r.add_argument("--metrics-port", type=int, help="port of /metrics (0 picks a free one)")
    r.add_argument("--enricher-version", type=int, help="enricher version (overrides [enrich] version)")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--until-idle", action="store_true", help="stop once the feed has nothing new")
    mode.add_argument("--once", action="store_true", help="stop after one segment")
    mode.add_argument("--segment", action="append", metavar="ID", help="enrich this segment now, without the queue")
    mode.add_argument("--failed", action="store_true", help="enrich again the segments this version recorded as failed")
    r.add_argument("--json", action="store_true", help="with --segment/--failed: print the outcomes as JSON")
    r.set_defaults(func=_cmd_run)

    show = esub.add_parser("show", help="show a segment's enrichment")
    show.add_argument("segment_id")
    common(show)
    show.add_argument("--enricher-version", type=int, help="this version (default: the latest)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--embeddings", action="store_true", help="with --json: include the embedding vectors")
    show.set_defaults(func=_cmd_show)

    st = esub.add_parser("status", help="segments enriched and failed per version, queue backlog")
    both(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=_cmd_status)
