"""Background upkeep: expire abandoned uploads, and repair what a crash left half done.

The repair pass (:func:`repair_once`) runs once as the daemon starts and then with every sweep:

- *stalled uploads*: in progress with every byte on disk but never ingested (the daemon died
  between the last byte and the commit) are completed, exactly as the final PATCH would have;
- *processed outputs*: committed segments whose outputs were never marked complete get them
  (re)written (:func:`cloud_ingest.processing.complete.complete_segments`, idempotent);
- *orphan files*: upload files whose upload is no longer in progress (the daemon died between the
  commit and the unlink), or that never got a row (and are older than a lease), are removed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from cloud_ingest.errors import IngestError, UploadLocked, UploadNotFound
from cloud_ingest.processing import complete as processed
from cloud_ingest.services import Services
from cloud_ingest.storage.metadata.protocol import IN_PROGRESS
from cloud_ingest.tus.completion import finish_stalled

log = logging.getLogger(__name__)
_UPLOAD_FILE = re.compile(r"^([0-9a-f]{32})\.(part|ingest)$")
#: Segments committed this recently may still be getting their outputs from the ingest itself.
# Long enough that the background worker finishes a 40 s segment of real sweeps (about a minute on
# two cores) before the repair pass would start the same job again; the startup pass uses 0.
REPAIR_GRACE_NS = 600 * 1_000_000_000
BATCH = 100


def sweep_once(svc: Services, now_ns: int) -> list[str]:
    """Delete every expired, unleased upload in progress (row and file); return their ids."""
    gone = []
    for rec in svc.db.expired_uploads(now_ns):
        svc.db.delete_upload(rec.upload_id)
        svc.files.delete(rec.upload_id)
        gone.append(rec.upload_id)
    if gone:
        svc.metrics.uploads_expired.inc(len(gone))
        log.info("expired uploads removed", extra={"upload_ids": gone})
    return gone


def remove_orphans(svc: Services, now_ns: int) -> list[str]:
    """Remove upload files that belong to no upload in progress; return their names."""
    lease_ns = int(svc.config.limits.lock_lease_s * 1e9)
    gone = []
    for path in sorted(svc.config.uploads_dir.iterdir()):
        m = _UPLOAD_FILE.fullmatch(path.name)
        if m is None or m.group(1) in svc.busy:
            continue
        rec = svc.db.get_upload(m.group(1))
        if rec is None:
            orphan = now_ns - path.stat().st_mtime_ns > lease_ns  # a POST creates the file before the row
        elif rec.status != IN_PROGRESS:
            orphan = True
        else:  # an in-progress upload keeps its file; a staging link is stale unless a live lease holds it
            orphan = m.group(2) == "ingest" and (rec.lock_until_ns < now_ns or rec.lock_owner == svc.owner)
        if orphan:
            path.unlink(missing_ok=True)
            gone.append(path.name)
    return gone


async def repair_once(svc: Services, grace_ns: int = REPAIR_GRACE_NS) -> dict[str, int]:
    """One repair pass (see the module docstring); returns how much of each kind it did."""
    finished = 0
    for rec in await svc.call(svc.db.stalled_uploads, BATCH):
        if rec.upload_id in svc.busy:
            continue
        try:
            await finish_stalled(svc, rec)
            finished += 1
        except (UploadLocked, UploadNotFound):
            continue  # another request or a live daemon has it, or it just completed
        except IngestError as exc:
            log.warning("stalled upload not completed", extra={"upload_id": rec.upload_id,
                                                                "reason": exc.reason, "detail": exc.detail})
    rows = await svc.call(svc.db.unprocessed_segments, time.time_ns() - grace_ns, BATCH)
    repaired = await svc.call(processed.complete_segments, svc.db, svc.store, [r.segment_id for r in rows])
    orphans = await svc.call(remove_orphans, svc, time.time_ns())
    done = {"stalled_upload": finished, "processed_outputs": len(repaired), "orphan_file": len(orphans)}
    for kind, n in done.items():
        svc.metrics.repaired.labels(kind).inc(n)
    if any(done.values()):
        log.info("repair pass", extra=done)
    return done


async def run_sweeper(svc: Services) -> None:
    """Repair at once, then expire and repair every ``limits.sweep_interval_s`` until cancelled;
    a failed pass is logged, not fatal."""
    first = True
    while True:
        try:
            if not first:
                await asyncio.to_thread(sweep_once, svc, time.time_ns())
            await repair_once(svc, grace_ns=0 if first else REPAIR_GRACE_NS)
        except Exception:
            log.exception("sweep failed; retrying next interval")
        first = False
        await asyncio.sleep(svc.config.limits.sweep_interval_s)
