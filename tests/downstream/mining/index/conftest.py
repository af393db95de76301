"""Fixtures for the vector index suite: every registered back-end, opened for real (FAISS in a
temporary directory, Milvus through pymilvus against milvus-lite serving a temporary ``.db``),
and clustered unit vectors like segment embeddings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.protocol import VectorIndex
from downstream.mining.index.records import VectorMetadata
from downstream.mining.index.registry import BACKENDS, IndexOptions, open_index
from shared.segment import Source
from tests.helpers import require_module

OpenIndex = Callable[..., VectorIndex]


def open_backend(backend: str, home: Path, dim: int, planner: PlannerSettings | None = None) -> VectorIndex:
    if backend == "milvus":
        require_module("pymilvus", "pymilvus not installed: the milvus back-end cannot run")
        require_module("milvus_lite", "milvus-lite not installed: no local Milvus to test against")
    opts = IndexOptions(backend=backend, dim=dim, directory=home / "faiss", uri=str(home / "milvus.db"),
                        planner=planner or PlannerSettings())
    return open_index(opts)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_index(backend: str, tmp_path: Path) -> Iterator[OpenIndex]:
    """Opens (or reopens) this test's index of ``backend``; closed at the end of the test."""
    opened: list[VectorIndex] = []

    def make(dim: int = 16, planner: PlannerSettings | None = None) -> VectorIndex:
        index = open_backend(backend, tmp_path, dim, planner)
        opened.append(index)
        return index

    yield make
    for index in opened:
        index.close()


def clustered(n: int, dim: int, seed: int = 0, per_cluster: int = 100) -> np.ndarray:
    """Unit vectors in clusters of about ``per_cluster`` (a centre plus a spread in a low-rank
    subspace plus isotropic noise), the clusters grouped ten to a parent: closer to real
    embeddings than isotropic Gaussian vectors, the worst case for any ANN index."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n // per_cluster)
    parents = rng.standard_normal((max(1, n_clusters // 10), dim))
    centres = parents[rng.integers(0, len(parents), n_clusters)] + 0.7 * rng.standard_normal((n_clusters, dim)) / np.sqrt(dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis = rng.standard_normal((8, dim)) * 0.6 / np.sqrt(8 * dim)
    labels = rng.integers(0, n_clusters, n)
    x = centres[labels] + rng.standard_normal((n, 8)) @ basis + 0.3 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def meta(i: int, *, vehicles: int = 100, tags: frozenset[str] = frozenset(), triggers: frozenset[str] = frozenset(),
         source: Source = Source.REAL) -> VectorMetadata:
    """Row ``i``: vehicle ``veh{i % vehicles}``, time [i·1000, i·1000 + 500] ns."""
    return VectorMetadata(f"veh{i % vehicles}", i * 1000, i * 1000 + 500, tags, triggers, source)


def brute_force(x: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k row numbers by cosine (rows of ``x`` are unit), restricted to ``allowed`` rows."""
    rows = np.arange(len(x)) if allowed is None else np.flatnonzero(allowed)
    sims = queries @ x[rows].T
    return rows[np.argsort(-sims, axis=1, kind="stable")[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))
