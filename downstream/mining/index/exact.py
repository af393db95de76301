"""Exact (brute-force) cosine search and the vector checks every back-end shares.

Vectors are stored as unit rows, so cosine similarity is a dot product and the distance reported
everywhere is ``1 - cos`` (in [0, 2]). The array maths takes an array module ``xp``: NumPy by
default, CuPy when asked for by name (imported only then), so the same code runs on a GPU where
one exists. Shapes: queries (q, d), rows (m, d), results (q, k).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.mining.errors import BackendUnavailable, BadVectors

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def array_module(name: str = "numpy") -> ModuleType:
    """``numpy`` or ``cupy`` (imported only when named; :class:`BackendUnavailable` if missing)."""
    if name == "numpy":
        return np
    if name != "cupy":
        raise BackendUnavailable(f"array module {name!r}: use 'numpy' or 'cupy'")
    try:
        return importlib.import_module("cupy")
    except ImportError as exc:
        raise BackendUnavailable(f"array module 'cupy' is not installed ({exc}); install the gpu extra "
                                 "or use 'numpy'") from None


def unit_rows(vectors: Any, dim: int, what: str = "vectors") -> F32:
    """``vectors`` as a C-contiguous float32 (n, dim) array of unit rows; a (dim,) vector is one row.

    Raises :class:`BadVectors` for a wrong shape, a non-finite value or a zero row (no direction)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise BadVectors(f"{what} of shape {np.shape(vectors)}: expected ({dim},) or (n, {dim})")
    if not np.isfinite(arr).all():
        raise BadVectors(f"{what}: NaN or infinite values; embed again or drop those rows")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise BadVectors(f"{what}: a zero vector has no direction for cosine search; drop it")
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def topk_exact(queries: F32, rows: F32, k: int, xp: ModuleType = np) -> tuple[I64, F32]:
    """The ``k`` rows nearest each query: positions into ``rows`` (q, k) and cosine distances (q, k).

    Fewer than ``k`` rows: the tail is padded with position -1 and distance ``inf``. One BLAS matmul
    (q, d) x (d, m) and a partial sort; on CuPy both run on the device and the results come back."""
    q, m = queries.shape[0], rows.shape[0]
    pos = np.full((q, k), -1, dtype=np.int64)
    dist = np.full((q, k), np.inf, dtype=np.float32)
    if m == 0 or k <= 0:
        return pos, dist
    sims = xp.asarray(queries) @ xp.asarray(rows).T
    take = min(k, m)
    full = xp.broadcast_to(xp.arange(m), (q, m))
    part = xp.argpartition(-sims, take - 1, axis=1)[:, :take] if take < m else full
    part_sims = xp.take_along_axis(sims, part, axis=1)
    order = xp.argsort(-part_sims, axis=1, kind="stable")
    best = xp.take_along_axis(part, order, axis=1)
    best_sims = xp.take_along_axis(part_sims, order, axis=1)
    to_host = getattr(xp, "asnumpy", np.asarray)
    pos[:, :take] = to_host(best)
    dist[:, :take] = np.clip(1.0 - to_host(best_sims).astype(np.float32), 0.0, 2.0)
    return pos, dist
