"""The FAISS back-end's own life cycle: exact until trained, the IVF after, retraining with
compaction as it grows (deleted rows gone, ids kept), and both states persisted and reopened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from downstream.mining.index.faiss_index import FaissIndex, nlist_for
from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.records import Filter, PlanKind
from tests.downstream.mining.index.conftest import brute_force, clustered, meta, recall

DIM = 8
ANN = PlannerSettings(exact_max_work=0)  # every search that can use the IVF does


def test_nlist_rule() -> None:
    assert nlist_for(1_000_000) == 4096 and nlist_for(50_000) == 1024 and nlist_for(700) == 16


def test_exact_until_trained_then_ivf(tmp_path: Path) -> None:
    x = clustered(3000, DIM, seed=4)
    index = FaissIndex.open(tmp_path, DIM, min_train_rows=1000, planner=ANN)
    index.upsert(list(range(900)), x[:900], [meta(i) for i in range(900)])
    res = index.search(x[0], 3)
    assert res.plan.kind is PlanKind.EXACT and "not built" in res.plan.reason and index.nlist == 0
    index.persist()
    assert FaissIndex.open(tmp_path, DIM).count() == 900  # the staged state reopens too
    index.upsert(list(range(900, 2000)), x[900:2000], [meta(i) for i in range(900, 2000)])
    assert index.nlist == nlist_for(2000)
    res = index.search(x[2000:2050], 10)
    assert res.plan.kind is PlanKind.ANN
    assert recall(res.ids.astype(np.int64), brute_force(x[:2000], x[2000:2050], 10)) >= 0.9


def test_growth_retrains_and_compacts(tmp_path: Path) -> None:
    x = clustered(12_000, DIM, seed=6)
    index = FaissIndex.open(tmp_path, DIM, min_train_rows=1000, planner=ANN)
    index.upsert(list(range(1000)), x[:1000], [meta(i) for i in range(1000)])
    first = index.nlist
    assert index.delete(list(range(0, 1000, 2))) == 500
    index.upsert([f"s{i}" for i in range(1000, 5000)], x[1000:5000], [meta(i) for i in range(1000, 5000)])
    assert index.nlist > first and index.count() == 4500  # retrained at 4x the training rows, dead rows dropped
    res = index.search(x[:1000], 1)
    assert not {v for v in res.ids[:, 0] if isinstance(v, int)} & set(range(0, 1000, 2))
    assert index.neighbours_of([1, "s1000"], 2).ids.shape == (2, 2)
    assert index.count(Filter(vehicle_ids=frozenset({"veh1"}))) == 50
    index.persist()
    again = FaissIndex.open(tmp_path, DIM, planner=ANN)
    assert again.count() == 4500 and again.nlist == index.nlist
    assert again.search(x[1001], 1).hits()[0][0] == "s1001"
