"""The vector index contract every back-end satisfies; one test suite runs against each.

Similarity is cosine: vectors and queries are normalised to unit length on the way in, and every
distance is ``1 - cos`` in [0, 2], nearest first. Ids are ``int`` or ``str`` (see
:mod:`downstream.mining.index.records`). A :class:`~downstream.mining.index.records.Filter` is
evaluated inside the index, before or during the search, never on its results, and the
:class:`~downstream.mining.index.records.QueryPlan` of each result says how it ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from downstream.mining.index.records import Filter, SearchResult, VectorId, VectorMetadata


class VectorIndex(Protocol):
    """Segment embeddings of one kind (e.g. ``visual_embedding``), searchable with metadata filters."""

    backend: str

    @property
    def dim(self) -> int:
        """The vector dimension this index holds."""
        ...

    def count(self, flt: Filter | None = None) -> int:
        """Live vectors, or those that pass ``flt``."""
        ...

    def upsert(self, ids: Sequence[VectorId], vectors: Any, metadata: Sequence[VectorMetadata]) -> None:
        """Add or replace one row per id: ``vectors`` (n, dim) or (dim,) float, ``metadata`` one per id."""
        ...

    def delete(self, ids: Sequence[VectorId]) -> int:
        """Remove these ids; the number that were present (unknown ids are ignored, so replays are safe)."""
        ...

    def search(self, queries: Any, k: int, flt: Filter | None = None) -> SearchResult:
        """The ``k`` nearest rows that pass ``flt`` for each query: ``queries`` (dim,) or (q, dim)."""
        ...

    def neighbours_of(self, ids: Sequence[VectorId], k: int, flt: Filter | None = None) -> SearchResult:
        """The ``k`` nearest other rows of each stored id, in one batch (for uniqueness and near-duplicates);
        :class:`~downstream.mining.errors.UnknownId` for an id not in the index."""
        ...

    def persist(self) -> None:
        """Make every write so far durable: after a crash or a restart the index opens with them."""
        ...

    def close(self) -> None:
        """Release the back-end's resources; the object is unusable afterwards."""
        ...
