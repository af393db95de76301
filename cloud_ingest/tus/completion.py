"""Finishing an upload whose last byte is durable: whole-file hash, integrity scan, ingest.

Reached three ways, all through :func:`complete_upload`: the final PATCH (its 204 is the
durability acknowledgement), a HEAD or PATCH on an upload that holds all its bytes but was never
ingested (a daemon died between the last byte and the commit), and the sweeper's repair pass.
Every path holds the upload's lease and this daemon's in-process claim on it, and the ingest is
idempotent, so a completion cut short at any instant is simply run again.
"""

from __future__ import annotations

import time

from cloud_ingest.errors import ChecksumMismatch, IntegrityFailure
from cloud_ingest.integrity.checks import check_sha256
from cloud_ingest.pipeline import IngestResult, ingest_upload
from cloud_ingest.services import Services
from cloud_ingest.storage.metadata.protocol import UploadRecord


async def complete_upload(svc: Services, rec: UploadRecord) -> IngestResult:
    """Ingest ``rec`` (all bytes on disk, lease held by ``svc.owner``); raise a typed error.

    A whole-file hash mismatch deletes the upload (460: the client starts over); an integrity
    failure quarantines it (422); anything else releases the lease and leaves the upload as it
    was, to be completed by the next HEAD, PATCH or repair pass.
    """
    t0 = time.perf_counter()
    try:
        prog = await svc.files.progress(rec.upload_id, rec.length_bytes)
        check_sha256(prog.sha256.hexdigest(), rec.sha256)
    except ChecksumMismatch:
        await svc.call(svc.db.delete_upload, rec.upload_id)
        svc.files.delete(rec.upload_id)
        raise
    except BaseException:
        await svc.call(svc.db.release_upload, rec.upload_id, svc.owner)
        raise
    try:
        result = await svc.call(ingest_upload, svc.files.path(rec.upload_id), rec, svc.ingest_deps(),
                                prog.scanner.finish)
    except IntegrityFailure as failure:
        svc.files.forget(rec.upload_id)
        svc.metrics.quarantined.labels(failure.reason).inc()
        raise
    except BaseException:
        await svc.call(svc.db.release_upload, rec.upload_id, svc.owner)
        raise
    svc.files.forget(rec.upload_id)
    svc.metrics.uploads_completed.inc()
    svc.metrics.segments_created.inc(len(result.new_segment_ids))
    svc.metrics.segments_joined.inc(result.joined is not None)
    svc.metrics.ingest_seconds.observe(time.perf_counter() - t0)
    return result


async def finish_stalled(svc: Services, rec: UploadRecord) -> IngestResult:
    """Claim and complete an in-progress upload that already holds all its bytes.

    Raises :class:`cloud_ingest.errors.UploadLocked` while another request or live daemon holds
    it, :class:`cloud_ingest.errors.UploadNotFound` once it is no longer in progress.
    """
    with svc.exclusive(rec.upload_id):
        claimed = await svc.call(svc.db.claim_upload, rec.upload_id, svc.owner, time.time_ns(),
                                 int(svc.config.limits.lock_lease_s * 1e9))
        return await complete_upload(svc, claimed)
