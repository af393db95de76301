"""The enrichment's tables in the metadata DB (component ``enrich`` of :mod:`downstream.migrations`).

- ``enrichment``: one row per ``(segment_id, enricher_version)``: the segment's vehicle, window and
  source (so mining filters without a join), the embeddings as little-endian float32 blobs
  (``visual_embedding`` 512, ``bev_embedding`` 256, ``image_text_embedding`` of the cloud encoder
  when one ran; NULL where the input was missing), the description and its describer, the map
  summary as JSON (``map_covered`` 1 when a map covered the segment, 0 for the GNSS box), the
  problems met (JSON) and the key of the processed document.
- ``enrichment_tags``: one row per tag (name, value, source, confidence) of a row above, indexed by
  ``(name, value)`` for SQL filters.
- ``enrichment_latest``: a view of each segment's highest version (what a query usually wants).
- ``enrichment_failures``: segments a version could not enrich (reason, detail); a later success
  of the same version deletes the row.
- ``enrichment_versions``: each version's settings fingerprint (:func:`register_version`).

Every write is an :data:`~cloud_ingest.storage.metadata.protocol.Effect`, committed with the
consumer's inbox row; ``ON CONFLICT DO NOTHING`` makes a second effect of the same row a no-op
(the same segment announced twice, or enriched by hand with ``enrich run --segment``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_ingest.storage.metadata.protocol import Effect, Tx
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from downstream.enrich.errors import VersionConflict
from downstream.enrich.result import EnrichmentResult
from downstream.migrations import migrate

COMPONENT = "enrich"
COLUMNS = ("segment_id, enricher_version, enricher, fingerprint, vehicle_id, start_ns, end_ns, source, "
           "visual_embedding, visual_frames, visual_source, bev_embedding, bev_sweep_t_ns, image_text_embedding, "
           "image_text_model, description, describer, map_covered, map_context, problems, output_key, enriched_ns")
MIGRATIONS = (
    (1, (
        """CREATE TABLE enrichment (
            segment_id TEXT NOT NULL, enricher_version INTEGER NOT NULL, enricher TEXT NOT NULL,
            fingerprint TEXT NOT NULL, vehicle_id TEXT NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL,
            source TEXT NOT NULL, visual_embedding {blob}, visual_frames INTEGER NOT NULL, visual_source TEXT NOT NULL,
            bev_embedding {blob}, bev_sweep_t_ns BIGINT, image_text_embedding {blob}, image_text_model TEXT NOT NULL,
            description TEXT NOT NULL, describer TEXT NOT NULL, map_covered INTEGER NOT NULL,
            map_context TEXT NOT NULL, problems TEXT NOT NULL, output_key TEXT NOT NULL,
            enriched_ns BIGINT NOT NULL, PRIMARY KEY (segment_id, enricher_version))""",
        "CREATE INDEX enrichment_by_vehicle ON enrichment (vehicle_id, start_ns)",
        """CREATE TABLE enrichment_tags (
            segment_id TEXT NOT NULL, enricher_version INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
            source TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (segment_id, enricher_version, name, value, source))""",
        "CREATE INDEX enrichment_tags_by_tag ON enrichment_tags (name, value, confidence)",
        """CREATE VIEW enrichment_latest AS SELECT e.* FROM enrichment e WHERE e.enricher_version =
            (SELECT MAX(x.enricher_version) FROM enrichment x WHERE x.segment_id = e.segment_id)""",
        """CREATE TABLE enrichment_failures (
            segment_id TEXT NOT NULL, enricher_version INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
            failed_ns BIGINT NOT NULL, PRIMARY KEY (segment_id, enricher_version))""",
        """CREATE TABLE enrichment_versions (
            enricher_version INTEGER PRIMARY KEY, enricher TEXT NOT NULL, fingerprint TEXT NOT NULL,
            settings TEXT NOT NULL, created_ns BIGINT NOT NULL)""",
    )),
)


def migrate_enrich(db: SQLMetadataDB) -> int:
    """Create or update the enrichment tables; returns their schema version."""
    return migrate(db, COMPONENT, MIGRATIONS)


def _blob(a: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, dtype="<f4").tobytes()


def unblob(b: bytes | memoryview | None) -> npt.NDArray[np.float32] | None:
    """A float32 embedding back from its blob (``None`` for NULL)."""
    return None if b is None else np.frombuffer(bytes(b), dtype="<f4").astype(np.float32)


def write_effect(result: EnrichmentResult, output_key: str) -> Effect:
    """The effect that records ``result``: its row, its tags, and no failure row for it."""
    r = result
    row = (r.segment_id, r.enricher_version, r.enricher, r.fingerprint, r.vehicle_id, r.start_ns, r.end_ns, r.source,
           _blob(r.visual_embedding), r.visual_frames, r.visual_source, _blob(r.bev_embedding), r.bev_sweep_t_ns,
           _blob(r.image_text_embedding), r.image_text_model, r.description, r.describer,
           int(r.map_context is not None and r.map_context.covered), json.dumps(r.map_summary(), sort_keys=True),
           json.dumps([{"reason": p.reason, "detail": p.detail} for p in r.problems]), output_key, r.enriched_ns)

    def effect(tx: Tx) -> None:
        tx.run(f"INSERT INTO enrichment ({COLUMNS}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT DO NOTHING",
               row)
        if tx.changed() == 1:
            for t in r.tags:
                tx.run("INSERT INTO enrichment_tags (segment_id, enricher_version, name, value, source, confidence) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (r.segment_id, r.enricher_version, t.name, t.value, t.source.value, t.confidence))
        tx.run("DELETE FROM enrichment_failures WHERE segment_id = ? AND enricher_version = ?",
               (r.segment_id, r.enricher_version))
    return effect


def failure_effect(segment_id: str, version: int, reason: str, detail: str) -> Effect:
    """The effect that records a segment version ``version`` could not enrich (the first reason stays)."""
    def effect(tx: Tx) -> None:
        tx.run("INSERT INTO enrichment_failures (segment_id, enricher_version, reason, detail, failed_ns) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (segment_id, version, reason, detail[:2000],
                                                                 time.time_ns()))
    return effect


def register_version(db: SQLMetadataDB, version: int, enricher: str, fingerprint: str,
                     settings: dict[str, Any]) -> None:
    """Record ``version``'s fingerprint, or check it against the recorded one; raises :class:`VersionConflict`."""
    with db.transaction() as tx:
        db.lock(tx, "enrich-version")
        got = tx.run("SELECT fingerprint, settings FROM enrichment_versions WHERE enricher_version = ?", (version,))
        if not got:
            tx.run("INSERT INTO enrichment_versions (enricher_version, enricher, fingerprint, settings, created_ns) "
                   "VALUES (?, ?, ?, ?, ?)", (version, enricher, fingerprint, json.dumps(settings, sort_keys=True),
                                               time.time_ns()))
            return
    if got[0][0] != fingerprint:
        raise VersionConflict(f"enricher version {version} was run with other settings (fingerprint {got[0][0]}, "
                              f"now {fingerprint}: {got[0][1]}); set [enrich] version to a new number so the "
                              "outputs of the two never mix")


@dataclass(frozen=True, slots=True)
class StoredEnrichment:
    """One ``enrichment`` row with its tags ``(name, value, source, confidence)``."""

    segment_id: str
    enricher_version: int
    vehicle_id: str
    start_ns: int
    end_ns: int
    source: str
    visual_embedding: npt.NDArray[np.float32] | None
    visual_frames: int
    visual_source: str
    bev_embedding: npt.NDArray[np.float32] | None
    image_text_embedding: npt.NDArray[np.float32] | None
    image_text_model: str
    description: str
    describer: str
    map_covered: bool
    map_summary: dict[str, Any]
    problems: list[dict[str, str]]
    output_key: str
    enriched_ns: int
    fingerprint: str
    tags: tuple[tuple[str, str, str, float], ...]


def get_enrichment(db: SQLMetadataDB, segment_id: str, version: int | None = None) -> StoredEnrichment | None:
    """The segment's row of ``version`` (its latest when ``None``), with its tags."""
    with db.transaction() as tx:
        if version is None:
            rows = tx.run(f"SELECT {COLUMNS} FROM enrichment_latest WHERE segment_id = ?", (segment_id,))
        else:
            rows = tx.run(f"SELECT {COLUMNS} FROM enrichment WHERE segment_id = ? AND enricher_version = ?",
                          (segment_id, version))
        if not rows:
            return None
        v = rows[0]
        tags = tx.run("SELECT name, value, source, confidence FROM enrichment_tags WHERE segment_id = ? AND "
                      "enricher_version = ? ORDER BY name, value, source", (segment_id, v[1]))
    return StoredEnrichment(
        segment_id=v[0], enricher_version=int(v[1]), fingerprint=v[3], vehicle_id=v[4], start_ns=int(v[5]),
        end_ns=int(v[6]), source=v[7], visual_embedding=unblob(v[8]), visual_frames=int(v[9]), visual_source=v[10],
        bev_embedding=unblob(v[11]), image_text_embedding=unblob(v[13]), image_text_model=v[14], description=v[15],
        describer=v[16], map_covered=bool(v[17]), map_summary=json.loads(v[18]), problems=json.loads(v[19]),
        output_key=v[20], enriched_ns=int(v[21]),
        tags=tuple((str(t[0]), str(t[1]), str(t[2]), float(t[3])) for t in tags))


def failures(db: SQLMetadataDB, version: int) -> list[tuple[str, str, str]]:
    """``(segment_id, reason, detail)`` of the segments ``version`` could not enrich."""
    with db.transaction() as tx:
        return [(str(r[0]), str(r[1]), str(r[2])) for r in tx.run(
            "SELECT segment_id, reason, detail FROM enrichment_failures WHERE enricher_version = ? "
            "ORDER BY failed_ns, segment_id", (version,))]


def status(db: SQLMetadataDB) -> dict[str, Any]:
    """Per version: segments enriched, failures by reason, settings fingerprint; live segments in all."""
    with db.transaction() as tx:
        versions = tx.run("SELECT enricher_version, enricher, fingerprint FROM enrichment_versions "
                          "ORDER BY enricher_version")
        done = dict(tx.run("SELECT enricher_version, COUNT(*) FROM enrichment GROUP BY enricher_version"))
        failed = tx.run("SELECT enricher_version, reason, COUNT(*) FROM enrichment_failures "
                        "GROUP BY enricher_version, reason ORDER BY enricher_version, reason")
        live = int(tx.run("SELECT COUNT(*) FROM segments WHERE superseded_by = ''")[0][0])
    out: dict[str, Any] = {"live_segments": live, "versions": []}
    for v, enricher, fp in versions:
        out["versions"].append({"version": int(v), "enricher": enricher, "fingerprint": fp,
                                "enriched": int(done.get(v, 0)),
                                "failed": {str(r): int(n) for vv, r, n in failed if vv == v}})
    return out
