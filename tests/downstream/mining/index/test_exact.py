"""Exact search: the same top-k as a full argsort, padding when fewer rows than k, the NumPy array
module by default, and a typed error for an array module that is not installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from downstream.mining.errors import BackendUnavailable, BadVectors
from downstream.mining.index.exact import array_module, topk_exact, unit_rows


def test_topk_matches_full_sort_with_numpy() -> None:
    rng = np.random.default_rng(0)
    rows, queries = unit_rows(rng.standard_normal((500, 24)), 24), unit_rows(rng.standard_normal((7, 24)), 24)
    pos, dist = topk_exact(queries, rows, 9, array_module("numpy"))
    sims = queries @ rows.T
    np.testing.assert_array_equal(pos, np.argsort(-sims, axis=1, kind="stable")[:, :9])
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(sims, pos, axis=1), atol=1e-6)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_fewer_rows_than_k_pads() -> None:
    rows = unit_rows(np.eye(3, dtype=np.float32), 3)
    pos, dist = topk_exact(rows[:1], rows, 5)
    assert list(pos[0]) == [0, 1, 2, -1, -1] and np.isinf(dist[0, 3:]).all()
    pos, _ = topk_exact(rows[:1], rows[:0], 2)
    assert (pos == -1).all()


def test_unit_rows_normalises_and_rejects() -> None:
    out = unit_rows([3.0, 4.0], 2)
    np.testing.assert_allclose(out, [[0.6, 0.8]])
    for bad in ([[1.0, 2.0, 3.0]], [[np.inf, 1.0]], [[0.0, 0.0]], np.ones((2, 2, 2))):
        with pytest.raises(BadVectors):
            unit_rows(bad, 2)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_cupy_when_absent_is_a_typed_error() -> None:
    with pytest.raises(BackendUnavailable, match="cupy"):
        array_module("cupy")
    with pytest.raises(BackendUnavailable):
        array_module("torch")
