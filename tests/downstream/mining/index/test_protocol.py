"""One suite for every VectorIndex back-end (FAISS embedded; Milvus through pymilvus on milvus-lite):
writes, search, every filter field, deletes, neighbours by id, persistence across a reopen, bad
input, and recall against brute force under unfiltered, 10 %, 1 % and 0.01 %-selective filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from downstream.mining.errors import BadMetadata, BadVectors, UnknownId
from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.protocol import VectorIndex
from downstream.mining.index.records import Filter, PlanKind, VectorMetadata
from downstream.mining.index.registry import BACKENDS
from shared.segment import Source
from tests.downstream.mining.index.conftest import OpenIndex, brute_force, clustered, meta, open_backend, recall

DIM = 16


def _small(index: VectorIndex, n: int = 300, seed: int = 1) -> np.ndarray:
    x = clustered(n, DIM, seed=seed, per_cluster=10)
    tags = [frozenset({"rain"} if i % 3 == 0 else {"night"} if i % 3 == 1 else {"rain", "night"}) for i in range(n)]
    trig = [frozenset({"hard_brake"}) if i % 7 == 0 else frozenset() for i in range(n)]
    src = [Source.SYNTHETIC if i % 5 == 0 else Source.REAL for i in range(n)]
    index.upsert(list(range(n)), x, [meta(i, vehicles=10, tags=tags[i], triggers=trig[i], source=src[i])
                                     for i in range(n)])
    return x


def test_search_finds_each_vector_first_with_cosine_distance(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    x = _small(index)
    assert index.count() == 300 and index.dim == DIM
    res = index.search(x[:5], 4)
    assert res.ids.shape == (5, 4) and res.distances.shape == (5, 4)
    assert list(res.ids[:, 0]) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(res.distances[:, 0], 0.0, atol=1e-5)
    truth = brute_force(x, x[:5], 4)
    assert recall(res.ids.astype(np.int64), truth) == 1.0
    expected = 1.0 - np.sort(x[:5] @ x.T, axis=1)[:, ::-1][:, :4]
    np.testing.assert_allclose(res.distances, expected, atol=1e-4)
    one = index.search(x[7] * 3.0, 1)  # (dim,) query, any length: cosine
    [(vid, dist)] = one.hits()
    assert vid == 7 and dist == pytest.approx(0.0, abs=1e-5)


def test_int_and_str_ids_are_distinct(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    v = clustered(2, DIM, seed=3)
    index.upsert([1, "1"], v, [meta(1), meta(2)])
    assert index.count() == 2
    assert index.search(v[0], 1).hits()[0][0] == 1
    assert index.search(v[1], 1).hits()[0][0] == "1"
    assert index.delete(["1"]) == 1 and index.count() == 1
    assert index.search(v[1], 2).hits()[0][0] == 1


def test_upsert_replaces_vector_and_metadata(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    x = _small(index)
    index.upsert([0], x[200], [meta(0, vehicles=10, tags=frozenset({"snow"}))])
    assert index.count() == 300
    assert set(index.search(x[200], 2).ids[0]) == {0, 200}
    assert index.search(x[0], 1).hits()[0][0] != 0
    snow = index.search(x[200], 5, Filter(tags_any=frozenset({"snow"})))
    [(vid, dist)] = snow.hits()
    assert vid == 0 and dist == pytest.approx(0.0, abs=1e-5)
    assert index.count(Filter(tags_any=frozenset({"rain"}))) == 199  # row 0 had rain, now only snow


def test_delete_removes_rows_and_ignores_unknown_ids(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    x = _small(index)
    assert index.delete([3, 4, 999, "nope"]) == 2
    assert index.delete([3]) == 0
    assert index.count() == 298
    found = index.search(x[3:5], 10).ids
    assert 3 not in found and 4 not in found


@pytest.mark.parametrize(("flt", "truth"), [
    (Filter(vehicle_ids=frozenset({"veh3", "veh4"})), lambda i: i % 10 in (3, 4)),
    (Filter(start_ns=50_500, end_ns=60_000), lambda i: 50 <= i <= 60),  # closed-interval overlap at both edges
    (Filter(end_ns=9_999), lambda i: i <= 9),
    (Filter(start_ns=290_000), lambda i: i >= 290),
    (Filter(tags_all=frozenset({"rain", "night"})), lambda i: i % 3 == 2),
    (Filter(tags_any=frozenset({"night", "fog"})), lambda i: i % 3 in (1, 2)),
    (Filter(tags_all=frozenset({"fog"})), lambda i: False),
    (Filter(triggers_any=frozenset({"hard_brake"})), lambda i: i % 7 == 0),
    (Filter(sources=frozenset({Source.SYNTHETIC})), lambda i: i % 5 == 0),
    (Filter(vehicle_ids=frozenset({"veh0"}), tags_any=frozenset({"rain"}), triggers_any=frozenset({"hard_brake"}),
            sources=frozenset({Source.REAL})), lambda i: i % 10 == 0 and i % 3 != 1 and i % 7 == 0 and i % 5 != 0),
])
def test_filters_select_exactly_the_matching_rows(make_index: OpenIndex, flt: Filter, truth) -> None:
    index = make_index(DIM)
    x = _small(index)
    allowed = np.array([truth(i) for i in range(300)])
    assert index.count(flt) == int(allowed.sum())
    res = index.search(x[:3], 8, flt)
    if not allowed.any():
        assert res.plan.kind is PlanKind.EMPTY and (res.ids == None).all()  # noqa: E711
        return
    want = brute_force(x, x[:3], 8, allowed)
    got = [[v for v in row if v is not None] for row in res.ids]
    assert all(allowed[v] for row in got for v in row)
    assert recall(np.array(got), want) == 1.0
    assert res.plan.filtered and res.plan.n_candidates == int(allowed.sum())


def test_neighbours_of_excludes_the_row_itself(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    x = _small(index)
    res = index.neighbours_of([0, 10, 20], 3)
    truth = brute_force(x, x[[0, 10, 20]], 4)[:, 1:]
    assert res.ids.shape == (3, 3)
    assert [list(r) for r in res.ids] == [list(r) for r in truth]
    assert (res.distances > 0).all()
    only_veh0 = index.neighbours_of([0], 2, Filter(vehicle_ids=frozenset({"veh0"})))
    assert all(v % 10 == 0 and v != 0 for v in only_veh0.ids[0])
    with pytest.raises(UnknownId):
        index.neighbours_of([0, 12345], 3)


def test_writes_survive_a_reopen(backend: str, tmp_path: Path) -> None:
    index = open_backend(backend, tmp_path, DIM)
    x = _small(index)
    index.delete([5])
    index.upsert(["late"], x[6], [meta(999, tags=frozenset({"late"}))])
    index.persist()
    before = index.search(x[:4], 5)
    index.close()
    again = open_backend(backend, tmp_path, DIM)
    try:
        assert again.count() == 300
        after = again.search(x[:4], 5)
        assert [list(r) for r in after.ids] == [list(r) for r in before.ids]
        assert again.search(x[6], 5, Filter(tags_any=frozenset({"late"}))).hits()[0][0] == "late"
        assert 5 not in again.search(x[5], 10).ids
        again.upsert([5], x[5], [meta(5)])
        assert again.search(x[5], 1).hits()[0][0] == 5
    finally:
        again.close()


def test_bad_input_is_refused_with_typed_errors(make_index: OpenIndex) -> None:
    index = make_index(DIM)
    x = _small(index, n=20)
    with pytest.raises(BadVectors):
        index.upsert([1000], np.ones(DIM + 1), [meta(1000)])
    with pytest.raises(BadVectors):
        index.upsert([1000], np.full(DIM, np.nan), [meta(1000)])
    with pytest.raises(BadVectors):
        index.upsert([1000], np.zeros(DIM), [meta(1000)])
    with pytest.raises(BadMetadata):
        index.upsert([1000, 1000], x[:2], [meta(1), meta(2)])
    with pytest.raises(BadMetadata):
        index.upsert([1000, 1001], x[:2], [meta(1)])
    with pytest.raises(BadMetadata):
        index.upsert([True], x[:1], [meta(1)])
    with pytest.raises(BadVectors):
        index.search(np.ones((2, DIM - 1)), 3)
    with pytest.raises(BadMetadata):
        index.search(x[0], 0)
    with pytest.raises(BadMetadata):
        VectorMetadata('veh"1', 0, 1)
    with pytest.raises(BadMetadata):
        Filter(start_ns=10, end_ns=5)
    assert index.count() == 20


# ---- recall against brute force under selective filters --------------------------------------------

N, RECALL_DIM, K = 50_000, 64, 10
#: At this scale exact search is cheap for any filter; a small work threshold makes the 10 % and 1 %
#: filters (and the unfiltered search) take the ANN path, so the ANN recall is what is measured there.
TEST_PLANNER = PlannerSettings(exact_max_work=10_000)
SELECTIVE = {
    "10%": Filter(vehicle_ids=frozenset(f"veh{v}" for v in range(10))),
    "1%": Filter(vehicle_ids=frozenset({"veh7"})),
    "0.01%": Filter(vehicle_ids=frozenset({"veh7"}), start_ns=0, end_ns=499 * 1000),  # rows 7, 107, ..., 407
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VectorIndex, np.ndarray]]:
    x = clustered(N + 50, RECALL_DIM, seed=11)
    index = open_backend(str(request.param), tmp_path_factory.mktemp(str(request.param)), RECALL_DIM, TEST_PLANNER)
    index.upsert(list(range(N)), x[:N], [meta(i) for i in range(N)])
    index.persist()
    yield index, x
    index.close()


def test_recall_unfiltered(big: tuple[VectorIndex, np.ndarray]) -> None:
    index, x = big
    queries = x[N:]
    res = index.search(queries, K)
    assert res.plan.kind is PlanKind.ANN
    assert recall(res.ids.astype(np.int64), brute_force(x[:N], queries, K)) >= 0.95


@pytest.mark.parametrize("name", list(SELECTIVE))
def test_recall_under_selective_filters(big: tuple[VectorIndex, np.ndarray], name: str) -> None:
    index, x = big
    flt, queries = SELECTIVE[name], x[N:]
    allowed = np.array([meta(i).vehicle_id in flt.vehicle_ids and (flt.end_ns is None or i * 1000 <= flt.end_ns)
                        for i in range(N)])
    assert allowed.mean() == pytest.approx(float(name.rstrip("%")) / 100)
    truth = brute_force(x[:N], queries, K, allowed)
    res = index.search(queries, K, flt)
    got = res.ids[:, : truth.shape[1]].astype(np.int64)
    assert allowed[got].all(), "a row outside the filter came back"
    assert recall(got, truth) >= 0.95, res.plan.explain()
    if name == "0.01%":
        assert res.plan.kind is PlanKind.EXACT and recall(got, truth) == 1.0
        assert (res.ids[:, 5:] == None).all()  # noqa: E711  only 5 rows pass: the rest is padding
    if name == "10%":
        assert res.plan.kind is PlanKind.ANN
