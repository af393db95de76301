"""Expiration: remove uploads in progress whose ``Upload-Expires`` has passed."""

from __future__ import annotations

import asyncio
import logging
import time

from cloud_ingest.services import Services

log = logging.getLogger(__name__)


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


async def run_sweeper(svc: Services) -> None:
    """Sweep every ``limits.sweep_interval_s`` until cancelled; a failed sweep is logged, not fatal."""
    while True:
        await asyncio.sleep(svc.config.limits.sweep_interval_s)
        try:
            await asyncio.to_thread(sweep_once, svc, time.time_ns())
        except Exception:
            log.exception("upload sweep failed; retrying next interval")
