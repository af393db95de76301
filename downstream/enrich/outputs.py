"""The enrichment's processed output: ``processed/{date}/{segment}/enrichment/v{N}.json``, once per version.

``processed/`` is append-only: the store refuses to replace a key. :func:`write_output` writes the
document of a result unless its key exists; when it exists (an earlier attempt wrote it and died
before its DB commit, or another enricher process got there first) the stored document wins and is
returned, so the metadata DB rows, made from what this returns, always equal the object. A new
enricher version writes ``v{N+1}.json`` beside the old ones and never touches them.
"""

from __future__ import annotations

import json

from cloud_ingest.errors import ObjectExists
from cloud_ingest.processing.keys import folder
from cloud_ingest.storage.objects.protocol import ObjectStore
from downstream.enrich.errors import BackendUnavailable, SnapshotUnreadable
from downstream.enrich.result import EnrichmentResult
from shared.errors import ContractError

FOLDER = "enrichment"


def output_key(segment_id: str, start_ns: int, version: int) -> str:
    """The key of version ``version``'s document of a segment."""
    return f"{folder(segment_id, start_ns)}/{FOLDER}/v{version}.json"


def encode_output(result: EnrichmentResult) -> bytes:
    return json.dumps(result.to_body(), sort_keys=True, separators=(",", ":")).encode()


def read_output(store: ObjectStore, key: str) -> EnrichmentResult:
    """The stored document at ``key``; raises :class:`SnapshotUnreadable` when it does not decode."""
    try:
        data = store.read_bytes(key)
    except Exception as exc:
        raise BackendUnavailable(f"object store did not return {key}: {exc}") from exc
    try:
        return EnrichmentResult.from_body(json.loads(data))
    except (ValueError, ContractError) as exc:
        raise SnapshotUnreadable(f"{key} is not an enrichment document ({exc}); it is write-once: "
                                 "bump [enrich] version to write a new one", reason="output_corrupt") from exc


def write_output(store: ObjectStore, result: EnrichmentResult) -> tuple[EnrichmentResult, bool]:
    """Write ``result``'s document once; ``(what the store holds, whether this call wrote it)``."""
    key = output_key(result.segment_id, result.start_ns, result.enricher_version)
    try:
        if not store.exists(key):
            store.put_bytes(key, encode_output(result))
            return result, True
    except ObjectExists:
        pass  # written between the check and the put: the first writer's document stands
    except Exception as exc:
        raise BackendUnavailable(f"object store refused {key}: {exc}") from exc
    return read_output(store, key), False
