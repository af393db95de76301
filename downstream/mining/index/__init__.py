"""The vector index over segment embeddings: the :class:`VectorIndex` protocol, metadata filters
evaluated inside the index, the planner that picks exact or approximate search per query, and the
back-ends by name (FAISS IVF embedded, Milvus at fleet scale).

Not imported here (they load a native or optional client library on first use):
:mod:`downstream.mining.index.faiss_index`, :mod:`downstream.mining.index.milvus_index`.
"""

from downstream.mining.index.exact import array_module, topk_exact, unit_rows
from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.protocol import VectorIndex
from downstream.mining.index.records import (
    Filter,
    PlanKind,
    QueryPlan,
    SearchResult,
    VectorId,
    VectorMetadata,
)
from downstream.mining.index.registry import BACKENDS, IndexOptions, open_index

__all__ = [
    "BACKENDS",
    "Filter",
    "IndexOptions",
    "PlanKind",
    "PlannerSettings",
    "QueryPlan",
    "SearchResult",
    "VectorId",
    "VectorIndex",
    "VectorMetadata",
    "array_module",
    "open_index",
    "topk_exact",
    "unit_rows",
]
