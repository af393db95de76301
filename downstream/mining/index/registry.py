"""Vector index back-ends by name: ``faiss`` (embedded default) and ``milvus`` (fleet scale).

Each entry imports its module only when chosen, so the embedded default never imports pymilvus.
Every class satisfies :class:`~downstream.mining.index.protocol.VectorIndex`; one test suite runs
against each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from downstream.mining.errors import BadMetadata, UnknownBackend
from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.protocol import VectorIndex


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Where and how to open an index. ``directory``: the FAISS index's home (persisted there);
    ``uri``: a Milvus server URL, or a local ``*.db`` path served by milvus-lite; ``array_module``:
    ``numpy`` or ``cupy`` for the exact search."""

    backend: str = "faiss"
    dim: int = 512
    directory: Path | None = None
    uri: str = ""
    collection: str = "segment_vectors"
    token: str = ""
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    array_module: str = "numpy"


def _faiss(opts: IndexOptions) -> VectorIndex:
    from downstream.mining.index.faiss_index import FaissIndex

    if opts.directory is None:
        raise BadMetadata("the faiss back-end needs a directory to persist to (IndexOptions.directory)")
    return FaissIndex.open(opts.directory, opts.dim, planner=opts.planner, array_module_name=opts.array_module)


def _milvus(opts: IndexOptions) -> VectorIndex:
    from downstream.mining.index.milvus_index import MilvusIndex

    if not opts.uri:
        raise BadMetadata("the milvus back-end needs a uri: http://host:19530, or a local path ending in .db")
    return MilvusIndex(opts.uri, opts.dim, opts.collection, token=opts.token, planner=opts.planner,
                       array_module_name=opts.array_module)


#: Back-end name → factory.
BACKENDS: dict[str, Callable[[IndexOptions], VectorIndex]] = {"faiss": _faiss, "milvus": _milvus}


def open_index(opts: IndexOptions) -> VectorIndex:
    """The index that ``opts`` names, opened (or created empty)."""
    try:
        factory = BACKENDS[opts.backend]
    except KeyError:
        raise UnknownBackend(f"unknown vector index back-end {opts.backend!r} "
                             f"(known: {', '.join(sorted(BACKENDS))})") from None
    return factory(opts)
