"""``avdata-cloud operators ...`` and ``avdata-cloud calib ...``: administration on the metadata DB."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from cloud_ingest import auth
from cloud_ingest.calibration.importers import FORMATS, import_calibration
from cloud_ingest.calibration.registry import CalibrationRegistry
from cloud_ingest.storage.metadata.sql import SQLMetadataDB

OpenDB = Callable[[argparse.Namespace], SQLMetadataDB]


def _operators(args: argparse.Namespace, open_db: OpenDB) -> int:
    db = open_db(args)
    try:
        print(auth.add_operator(db, args.name))
        return 0
    finally:
        db.close()


def _calib(args: argparse.Namespace, open_db: OpenDB) -> int:
    db = open_db(args)
    try:
        registry = CalibrationRegistry(db)
        if args.action == "import":
            bundle = import_calibration(args.path, args.format, args.vehicle, args.version, args.valid_from_ns,
                                        args.valid_to_ns)
            stored = registry.add(bundle)
            print(f"{stored.vehicle_id}\t{stored.version}\t[{stored.valid_from_ns}, "
                  f"{stored.valid_to_ns if stored.valid_to_ns is not None else 'open'})\t"
                  f"cameras={len(stored.cameras)}\tsensors={len(stored.extrinsics)}")
            return 0
        vehicles = [args.vehicle] if args.vehicle else [v.vehicle_id for v in db.list_vehicles()]
        rows = [(b.vehicle_id, b.version, b.valid_from_ns, b.valid_to_ns, [c.sensor_id for c in b.cameras])
                for v in vehicles for b in registry.versions(v)]
        if args.json:
            print(json.dumps([{"vehicle_id": r[0], "version": r[1], "valid_from_ns": r[2], "valid_to_ns": r[3],
                               "cameras": r[4]} for r in rows], indent=2))
        for r in rows if not args.json else []:
            print(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3] if r[3] is not None else 'open'}\t{','.join(r[4])}")
        return 0
    finally:
        db.close()


def add_commands(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                 common: Callable[[argparse.ArgumentParser], None], open_db: OpenDB) -> None:
    """Register ``operators`` and ``calib`` on the top-level sub-parsers."""
    o = sub.add_parser("operators", help="read-API credentials")
    osub = o.add_subparsers(dest="action", required=True)
    add = osub.add_parser("add", help="create an operator; prints ONLY its token (op.<name>.<secret>)")
    add.add_argument("name")
    common(add)
    o.set_defaults(func=lambda a: _operators(a, open_db))

    c = sub.add_parser("calib", help="calibration versions per vehicle")
    csub = c.add_subparsers(dest="action", required=True)
    imp = csub.add_parser("import", help="import a dataset calibration file as a new version")
    imp.add_argument("path", type=Path, help="KITTI calib .txt, nuScenes info .pkl, or AV2 log directory")
    imp.add_argument("--format", required=True, choices=sorted(FORMATS))
    imp.add_argument("--vehicle", required=True)
    imp.add_argument("--version", required=True)
    imp.add_argument("--valid-from-ns", type=int, required=True)
    imp.add_argument("--valid-to-ns", type=int, default=None, help="end of validity (default: open)")
    common(imp)
    ls = csub.add_parser("ls", help="list calibration versions")
    ls.add_argument("--vehicle", help="only this vehicle (default: every registered vehicle)")
    ls.add_argument("--json", action="store_true")
    common(ls)
    c.set_defaults(func=lambda a: _calib(a, open_db))
