"""The fleet-scale vector index: a Milvus collection driven through pymilvus.

``uri`` is a Milvus server (``http://host:19530``) in production, or a local path ending in
``.db``, which pymilvus serves with milvus-lite (an in-process gRPC server over the same client
protocol) in tests and on one machine. Why Milvus and not Qdrant: both have a server that filters
inside its HNSW traversal, but in tests only milvus-lite runs a real engine, evaluating the same
filter expressions to a bitmap and handing it to a FAISS index, while Qdrant's local mode is a
brute-force scan with a Python filter loop that warns above 20,000 points, so a test of it would
test neither its index nor its filter engine.

Filters become Milvus boolean expressions (:func:`to_expression`) evaluated by the engine: never
an id list (FiftyOne's way, ~30 s for 1M ids, milvus #16115) and never a filter over returned
hits. The same planner as the embedded index runs first: ``count(*)`` under the expression gives
the candidates; few of them (``candidates × dim <= exact_max_work``, and at most
:data:`MAX_EXACT_ROWS`, what one Milvus query returns) are fetched by the expression and searched
exactly here, more go to HNSW with ``ef`` widened by the inverse selectivity. milvus-lite has one
process per data directory and no concurrent writers; a server has neither limit.

Row layout: ``pk`` VARCHAR (the encoded id), ``vec`` FLOAT_VECTOR (COSINE), ``vehicle_id``,
``start_ns``, ``end_ns``, ``source``, and ``tags``/``triggers`` as ARRAY<VARCHAR>.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.mining.errors import BackendUnavailable, BadMetadata, UnknownId
from downstream.mining.index.exact import F32, array_module, topk_exact, unit_rows
from downstream.mining.index.planner import PlannerSettings, choose
from downstream.mining.index.records import (
    MAX_NAMES,
    Filter,
    PlanKind,
    QueryPlan,
    SearchResult,
    VectorId,
    VectorMetadata,
    check_id,
    decode_id,
    encode_id,
)

MAX_EXACT_ROWS = 16_384
MAX_EF = 2048
_BATCH = 2000

try:
    import pymilvus
except ImportError:  # pragma: no cover - the registry reports it
    pymilvus = None


def to_expression(flt: Filter | None) -> str:
    """The Milvus boolean expression for ``flt`` (``""`` matches everything)."""
    if flt is None or flt.is_empty:
        return ""

    def names(values: frozenset[str]) -> str:
        return json.dumps(sorted(values))  # names are checked: no quote or backslash can occur

    terms = []
    if flt.vehicle_ids:
        terms.append(f"vehicle_id in {names(flt.vehicle_ids)}")
    if flt.end_ns is not None:
        terms.append(f"start_ns <= {int(flt.end_ns)}")
    if flt.start_ns is not None:
        terms.append(f"end_ns >= {int(flt.start_ns)}")
    if flt.sources:
        terms.append(f"source in {names(frozenset(s.value for s in flt.sources))}")
    if flt.tags_all:
        terms.append(f"array_contains_all(tags, {names(flt.tags_all)})")
    if flt.tags_any:
        terms.append(f"array_contains_any(tags, {names(flt.tags_any)})")
    if flt.triggers_any:
        terms.append(f"array_contains_any(triggers, {names(flt.triggers_any)})")
    return " and ".join(f"({t})" for t in terms)


class MilvusIndex:
    """A :class:`~downstream.mining.index.protocol.VectorIndex` in one Milvus collection."""

    backend = "milvus"

    def __init__(self, uri: str, dim: int, collection: str = "segment_vectors", *, token: str = "",
                 hnsw_m: int = 32, ef_construction: int = 200, ef: int = 64,
                 planner: PlannerSettings | None = None, array_module_name: str = "numpy") -> None:
        if pymilvus is None:
            raise BackendUnavailable("the milvus back-end needs pymilvus (and milvus-lite for a local .db); "
                                     "pip install the pinned versions from requirements.lock")
        self._dim, self.collection, self.ef = dim, collection, ef
        self.planner = planner or PlannerSettings()
        self._xp: ModuleType = array_module(array_module_name)
        # pymilvus starts a milvus-lite server for a local .db path and keeps it until the process
        # exits; close() stops it, so the path is served by one MilvusIndex at a time.
        self._local_db = uri if uri.endswith(".db") and "://" not in uri else ""
        try:
            self._client = pymilvus.MilvusClient(uri=uri, token=token)
        except pymilvus.MilvusException as exc:
            raise BackendUnavailable(f"cannot reach Milvus at {uri!r}: {exc}") from None
        if self._client.has_collection(collection):
            self._check_dim()
            self._client.load_collection(collection)  # a reopened collection starts released
        else:
            self._create(hnsw_m, ef_construction)

    def _create(self, hnsw_m: int, ef_construction: int) -> None:
        dt = pymilvus.DataType
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", dt.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("vec", dt.FLOAT_VECTOR, dim=self._dim)
        schema.add_field("vehicle_id", dt.VARCHAR, max_length=128)
        schema.add_field("start_ns", dt.INT64)
        schema.add_field("end_ns", dt.INT64)
        schema.add_field("source", dt.VARCHAR, max_length=16)
        for name in ("tags", "triggers"):
            schema.add_field(name, dt.ARRAY, element_type=dt.VARCHAR, max_capacity=MAX_NAMES, max_length=128)
        params = self._client.prepare_index_params()
        params.add_index(field_name="vec", index_type="HNSW", metric_type="COSINE",
                         params={"M": hnsw_m, "efConstruction": ef_construction})
        self._client.create_collection(self.collection, schema=schema, index_params=params,
                                       consistency_level="Strong")

    def _check_dim(self) -> None:
        fields = self._client.describe_collection(self.collection)["fields"]
        dims = [int(f["params"]["dim"]) for f in fields if f["name"] == "vec"]
        if dims != [self._dim]:
            raise BadMetadata(f"collection {self.collection!r} holds vectors of dim {dims}, not {self._dim}; "
                              "open it with its dim or use another collection")

    # ---- Protocol -----------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    def count(self, flt: Filter | None = None) -> int:
        res = self._client.query(self.collection, filter=to_expression(flt), output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def upsert(self, ids: Sequence[VectorId], vectors: Any, metadata: Sequence[VectorMetadata]) -> None:
        rows = unit_rows(vectors, self._dim)
        keys = [check_id(v) for v in ids]
        if not (len(keys) == len(rows) == len(metadata)):
            raise BadMetadata(f"{len(keys)} ids, {len(rows)} vectors and {len(metadata)} metadata: one of each per row")
        if len(set(keys)) != len(keys):
            raise BadMetadata("an id appears twice in one upsert; send each id once")
        for start in range(0, len(keys), _BATCH):
            batch = [{"pk": encode_id(v), "vec": rows[i], "vehicle_id": m.vehicle_id, "start_ns": m.start_ns,
                      "end_ns": m.end_ns, "source": m.source.value, "tags": sorted(m.tags),
                      "triggers": sorted(m.triggers)}
                     for i, (v, m) in enumerate(zip(keys[start:start + _BATCH], metadata[start:start + _BATCH],
                                                   strict=True), start)]
            self._client.upsert(self.collection, batch)

    def delete(self, ids: Sequence[VectorId]) -> int:
        keys = [encode_id(check_id(v)) for v in ids]
        if not keys:
            return 0
        present = [r["pk"] for r in self._client.get(self.collection, ids=keys, output_fields=["pk"])]
        if present:
            self._client.delete(self.collection, ids=present)
        return len(present)

    def search(self, queries: Any, k: int, flt: Filter | None = None) -> SearchResult:
        return self._search(unit_rows(queries, self._dim, "queries"), k, flt, exclude=None)

    def neighbours_of(self, ids: Sequence[VectorId], k: int, flt: Filter | None = None) -> SearchResult:
        keys = [encode_id(check_id(v)) for v in ids]
        got = {r["pk"]: r["vec"] for r in self._client.get(self.collection, ids=keys, output_fields=["pk", "vec"])}
        missing = [decode_id(key) for key in keys if key not in got]
        if missing:
            raise UnknownId(f"id {missing[0]!r} is not in the index; add it first")
        vectors = np.asarray([got[key] for key in keys], dtype=np.float32)
        return self._search(unit_rows(vectors, self._dim), k, flt, exclude=keys)

    def persist(self) -> None:
        """Seal what was written (Milvus builds the index of sealed segments); writes are durable on return."""
        self._client.flush(self.collection)

    def close(self) -> None:
        self._client.close()
        if self._local_db:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self._local_db)

    # ---- the plan ------------------------------------------------------------------------------------

    def _search(self, queries: F32, k: int, flt: Filter | None, exclude: list[str] | None) -> SearchResult:
        if k <= 0:
            raise BadMetadata(f"k = {k}: ask for at least one neighbour")
        want = k + (exclude is not None)
        expr = to_expression(flt)
        n_rows = self.count()
        n_cand = self.count(flt) if expr else n_rows
        plan = choose(backend=self.backend, n_rows=n_rows, n_candidates=n_cand, filtered=bool(expr), dim=self._dim,
                      k=want, ann_ready=True, ann_params=lambda n, kk: self._ann_params(n_rows, n, kk),
                      settings=self.planner)
        if plan.kind is PlanKind.EXACT and n_cand > MAX_EXACT_ROWS:
            plan = QueryPlan(PlanKind.ANN, self.backend, n_rows, n_cand, bool(expr),
                             (("ef", MAX_EF),), f"more than {MAX_EXACT_ROWS} candidates to fetch: ANN at the widest ef")
        keys: list[list[str]]
        dists: list[list[float]]
        if plan.kind is PlanKind.EMPTY:
            keys, dists = [[] for _ in queries], [[] for _ in queries]
        elif plan.kind is PlanKind.EXACT:
            keys, dists = self._exact(queries, want, expr)
        else:
            keys, dists = self._ann(queries, want, expr, dict(plan.params)["ef"])
        if exclude is not None:
            keys, dists = _drop_self(keys, dists, exclude, k)
        return _result(keys, dists, k, plan)

    def _ann_params(self, n_rows: int, n_candidates: int, k: int) -> tuple[tuple[str, int], ...] | None:
        ef = max(self.ef, k, math.ceil(self.ef * n_rows / n_candidates))
        if ef > MAX_EF and n_candidates <= MAX_EXACT_ROWS:
            return None
        return (("ef", min(ef, MAX_EF)),)

    def _exact(self, queries: F32, k: int, expr: str) -> tuple[list[list[str]], list[list[float]]]:
        rows = self._client.query(self.collection, filter=expr or 'pk != ""', output_fields=["pk", "vec"],
                                  limit=MAX_EXACT_ROWS)
        pks = [r["pk"] for r in rows]
        vecs = np.asarray([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), self._dim)
        pos, dist = topk_exact(queries, vecs, k, self._xp)
        found = pos >= 0
        return ([[pks[p] for p in row[ok]] for row, ok in zip(pos, found, strict=True)],
                [[float(d) for d in row[ok]] for row, ok in zip(dist, found, strict=True)])

    def _ann(self, queries: F32, k: int, expr: str, ef: int) -> tuple[list[list[str]], list[list[float]]]:
        res = self._client.search(self.collection, data=list(queries), limit=k, filter=expr, output_fields=["pk"],
                                  search_params={"metric_type": "COSINE", "params": {"ef": max(ef, k)}})
        # Milvus reports COSINE as the similarity (larger is nearer); the protocol's distance is 1 - cos.
        return ([[h["pk"] for h in hits] for hits in res],
                [[min(2.0, max(0.0, 1.0 - float(h["distance"]))) for h in hits] for hits in res])


def _drop_self(keys: list[list[str]], dists: list[list[float]], exclude: list[str], k: int) -> \
        tuple[list[list[str]], list[list[float]]]:
    out_k, out_d = [], []
    for row_k, row_d, own in zip(keys, dists, exclude, strict=True):
        pairs = [(key, d) for key, d in zip(row_k, row_d, strict=True) if key != own][:k]
        out_k.append([p[0] for p in pairs])
        out_d.append([p[1] for p in pairs])
    return out_k, out_d


def _result(keys: list[list[str]], dists: list[list[float]], k: int, plan: QueryPlan) -> SearchResult:
    ids: npt.NDArray[np.object_] = np.full((len(keys), k), None, dtype=object)
    dist = np.full((len(keys), k), np.inf, dtype=np.float32)
    for i, (row_k, row_d) in enumerate(zip(keys, dists, strict=True)):
        ids[i, : len(row_k)] = [decode_id(key) for key in row_k[:k]]
        dist[i, : len(row_d)] = row_d[:k]
    return SearchResult(ids, dist, plan)
