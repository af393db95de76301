"""What one enrichment process holds, and one segment's enrichment from record to effect.

:func:`open_runtime` opens the metadata DB (and its enrichment tables), the object store and the
maps, fingerprints the settings and registers the version. :meth:`Runtime.enrich` is the blocking
path of one segment: read its inputs (:mod:`.reader`), compute (:mod:`.service`), write the
processed document once (:mod:`.outputs`) and return the DB effect made from what the store holds
(:mod:`.store`). The crash windows, each safe to run again:

- before the document is written: nothing is stored; the delivery comes again and is computed again;
- after the document, before the effect commits: the next attempt finds the document, keeps it
  (the store refuses to replace it) and commits the rows made from it, so DB and object agree;
- after the commit, before the feed's ack: the inbox holds the message; it is acknowledged unapplied.

:func:`enrich_now` runs the same path outside the queue (``avdata-cloud enrich run --segment``),
committing each effect in a transaction of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.metadata.protocol import Effect
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.objects.protocol import ObjectStore
from cloud_ingest.storage.objects.registry import open_store
from downstream.enrich.bev import BevProjector, array_module
from downstream.enrich.config import ENRICHER, EnrichConfig, fingerprint
from downstream.enrich.describe import TemplateDescriber
from downstream.enrich.errors import BackendUnavailable, MapFormatError, ProcessedMissing, SegmentInputError
from downstream.enrich.maps.protocol import MapProvider
from downstream.enrich.maps.registry import MapSet, open_map
from downstream.enrich.metrics import EnrichMetrics
from downstream.enrich.outputs import output_key, write_output
from downstream.enrich.reader import SegmentReader
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.service import EnrichmentService, EnrichSettings
from downstream.enrich.store import failure_effect, get_enrichment, migrate_enrich, register_version, write_effect
from shared.segment import Segment

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The resources of one enrichment process (see :func:`open_runtime`)."""

    cloud: CloudConfig
    cfg: EnrichConfig
    db: SQLMetadataDB
    store: ObjectStore
    reader: SegmentReader
    service: EnrichmentService
    metrics: EnrichMetrics
    fingerprint: str

    def enrich(self, seg: Segment) -> tuple[Effect, EnrichmentResult, bool]:
        """Compute, write once, and return ``(effect, what the store holds, whether this wrote it)``."""
        inputs = self.reader.read(seg)
        result = self.service.enrich(inputs, now_ns=time.time_ns())
        stored, wrote = write_output(self.store, result)
        return write_effect(stored, output_key(seg.segment_id, seg.start_ns, self.cfg.version)), stored, wrote

    def failed(self, segment_id: str, exc: SegmentInputError | Exception) -> Effect:
        reason = exc.reason if isinstance(exc, SegmentInputError) else "internal_error"
        return failure_effect(segment_id, self.cfg.version, reason, str(exc) or type(exc).__name__)

    def close(self) -> None:
        self.db.close()


def _maps(cfg: EnrichConfig) -> tuple[list[MapProvider], list[bytes]]:
    providers, blobs = [], []
    for m in cfg.maps:
        try:
            blobs.append(m.path.read_bytes())
        except OSError as exc:
            raise MapFormatError(f"[enrich] maps: cannot read {m.path}: {exc.strerror or exc}") from exc
        providers.append(open_map(m.format, m.path))
    return providers, blobs


def open_runtime(cloud: CloudConfig, cfg: EnrichConfig, metrics: EnrichMetrics | None = None) -> Runtime:
    """Open everything one process needs; raises :class:`~downstream.enrich.errors.VersionConflict`,
    :class:`MapFormatError` or :class:`~downstream.enrich.errors.UnknownMapFormat` on a bad setup."""
    providers, blobs = _maps(cfg)
    fp = fingerprint(cfg, blobs)
    db = open_db(cloud.db.backend, sqlite_path=str(cloud.sqlite_path), dsn=cloud.db.dsn, schema=cloud.db.schema)
    try:
        migrate_enrich(db)
        register_version(db, cfg.version, ENRICHER, fp, {**cfg.settings(), "fingerprint": fp})
        store = open_store(cloud)
        settings = EnrichSettings(version=cfg.version, enricher=ENRICHER, fingerprint=fp,
                                  map_radius_m=cfg.map_radius_m, ood_ratio_threshold=cfg.ood_ratio_threshold)
        service = EnrichmentService(settings, MapSet(providers), TemplateDescriber(cfg.min_confidence),
                                    BevProjector(seed=cfg.bev_seed, xp=array_module(cfg.array_module)))
    except BaseException:
        db.close()
        raise
    return Runtime(cloud, cfg, db, store, SegmentReader(store, db), service, metrics or EnrichMetrics(), fp)


def count(metrics: EnrichMetrics, outcome: str, result: EnrichmentResult | None, reason: str = "") -> None:
    """Count one committed outcome (``enriched`` with its input problems, or ``failed`` with its reason)."""
    metrics.segments.labels(outcome).inc()
    if outcome == "failed":
        metrics.failures.labels(reason).inc()
    if result is not None:
        for p in result.problems:
            metrics.input_problems.labels(p.reason).inc()
        metrics.last_enriched.set(time.time())


def enrich_now(rt: Runtime, segment_ids: Iterable[str],
               advance: Callable[[str, str], None] = lambda sid, outcome: None) -> dict[str, str]:
    """Enrich ``segment_ids`` directly (no queue, no wait for processed outputs); their outcomes:
    ``enriched``, ``exists`` (this version's row is there), or ``failed:<reason>``."""
    out: dict[str, str] = {}
    for sid in segment_ids:
        if get_enrichment(rt.db, sid, rt.cfg.version) is not None:
            out[sid] = "exists"
            advance(sid, out[sid])
            continue
        result: EnrichmentResult | None = None
        try:
            seg = rt.reader.segment(sid)
            missing = rt.reader.missing_processed(seg)
            if missing:
                raise ProcessedMissing(f"segment {sid}: {missing[0]} is not written yet; run again once the "
                                       "ingest daemon has written it")
            effect, result, _ = rt.enrich(seg)
            outcome, reason = "enriched", ""
        except SegmentInputError as exc:
            effect, outcome, reason = rt.failed(sid, exc), "failed", exc.reason
        except BackendUnavailable:
            raise
        except Exception as exc:  # as the service does: recorded, and the next segment goes on
            log.exception("segment enrichment failed", extra={"segment_id": sid})
            effect, outcome, reason = rt.failed(sid, exc), "failed", "internal_error"
        with rt.db.transaction() as tx:
            effect(tx)
        count(rt.metrics, outcome, result, reason)
        out[sid] = outcome if outcome == "enriched" else f"failed:{reason}"
        advance(sid, out[sid])
        log.info("segment enriched" if outcome == "enriched" else "segment not enrichable",
                 extra={"segment_id": sid, "outcome": out[sid]})
    return out
