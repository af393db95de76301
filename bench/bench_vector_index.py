"""The embedded vector index (FAISS IVF with filters inside the index) against brute force, one core.

Data: ``n`` × 512 float32 unit vectors, clustered like embeddings rather than isotropic (random
Gaussian vectors in 512-d have no neighbourhood structure and are the worst case for every ANN
index; real embeddings form clusters on a low-dimensional manifold): n/1000 parent directions,
n/100 cluster centres around them, and each vector a centre plus a spread in a rank-32 subspace
plus isotropic noise (:func:`clustered_unit_vectors`). Queries are 300 further vectors from the
same distribution. Metadata: 100 vehicles, so ``vehicle_id == "veh7"`` is a 1 %-selective filter
independent of the clusters.

Figures (FAISS and NumPy on one thread, ``faiss.omp_set_num_threads(1)``), each beside a limit
measured in the same run:

* ``vindex_knn_p50_latency`` / ``_p99_``: one query at a time, k = 10, against brute-force exact
  search over the same vectors (``faiss.knn``, one thread).
* ``vindex_knn_recall_at_10``: against 1.0 (the exact top 10).
* ``vindex_knn_filtered_*``: the same with the 1 % filter; the limit is brute force over the same
  vectors with the same filter (an exhaustive ``IndexFlatIP`` scan with the filter's
  ``IDSelectorBitmap``).
* ``vindex_build_s``: one ``upsert`` of all vectors (normalise, train the IVF, add) against writing
  the same vectors once with ``np.save`` + fsync, the least any persisted index costs.
* ``vindex_persist_s``: the crash-safe persist (generation directory, fsyncs, renames) against the
  same ``np.save`` + fsync.

``python -m bench.bench_vector_index --compare`` measures IVF against HNSW (recall, latency, build,
with and without the filter) on the same data: the measurement behind the choice of IVF.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss as faiss_typed
import numpy as np

from bench.common import Figure, print_figures
from downstream.mining.index.faiss_index import FaissIndex
from downstream.mining.index.planner import PlannerSettings
from downstream.mining.index.records import Filter, VectorMetadata

faiss: Any = faiss_typed
DIM, K, N_QUERIES, N_LIMIT_QUERIES = 512, 10, 300, 30
FILTER = Filter(vehicle_ids=frozenset({"veh7"}))


def clustered_unit_vectors(n: int, dim: int, seed: int = 1, per_cluster: int = 100, per_parent: int = 10,
                           rank: int = 32, n_bases: int = 64, sibling: float = 0.7, spread: float = 0.6,
                           noise: float = 0.3, chunk: int = 16_384) -> np.ndarray:
    """(n, dim) float32 unit rows: parent directions, cluster centres ``sibling`` away from their parent,
    each row its centre + a ``spread`` in one of ``n_bases`` rank-``rank`` subspaces + ``noise``."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n // per_cluster)
    parents = rng.standard_normal((max(1, n_clusters // per_parent), dim), dtype=np.float32)
    parents /= np.linalg.norm(parents, axis=1, keepdims=True)
    centres = parents[rng.integers(0, len(parents), n_clusters)]
    centres += rng.standard_normal((n_clusters, dim), dtype=np.float32) * np.float32(sibling / np.sqrt(dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((n_bases, rank, dim), dtype=np.float32) * np.float32(spread / np.sqrt(rank * dim))
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        label = rng.integers(0, n_clusters, m)
        v = centres[label] + rng.standard_normal((m, dim), dtype=np.float32) * np.float32(noise / np.sqrt(dim))
        z = rng.standard_normal((m, rank), dtype=np.float32)
        for b in range(n_bases):
            rows = np.flatnonzero(label % n_bases == b)
            v[rows] += z[rows] @ bases[b]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[s : s + m] = v
    return out


def _metadata(n: int) -> list[VectorMetadata]:
    return [VectorMetadata(f"veh{i % 100}", i * 1_000_000, i * 1_000_000 + 30_000_000) for i in range(n)]


def _latencies(fn: Callable[[int], np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query seconds and the (n, K) rows found, one query at a time."""
    times, found = np.empty(n), np.empty((n, K), dtype=np.int64)
    for i in range(n):
        t0 = time.perf_counter()
        found[i] = fn(i)
        times[i] = time.perf_counter() - t0
    return times, found


def _one(index: FaissIndex, q: np.ndarray, flt: Filter | None, i: int) -> np.ndarray:
    return index.search(q[i], K, flt).ids[0].astype(np.int64)


def _one_raw(index: Any, q: np.ndarray, params: Any, i: int) -> np.ndarray:
    return index.search(q[i : i + 1], K, params=params)[1][0]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def _save_fsync(x: np.ndarray, path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        np.save(fh, x)
        fh.flush()
        os.fsync(fh.fileno())
    return time.perf_counter() - t0


def _truth(x: np.ndarray, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    base = x if rows is None else np.ascontiguousarray(x[rows])
    _, pos = faiss.knn(q, base, K, metric=faiss.METRIC_INNER_PRODUCT)
    return pos if rows is None else rows[pos]


def _filtered_brute_force(x: np.ndarray, q: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per-query seconds of an exhaustive scan of ``x`` that skips rows outside ``allowed`` (a copy of
    ``x`` in an ``IndexFlatIP`` while it runs)."""
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    bitmap = np.packbits(allowed, bitorder="little")
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(bitmap))
    times, _ = _latencies(lambda i: flat.search(q[i : i + 1], K, params=params)[1][0], N_LIMIT_QUERIES)
    return times


def _crossover(index: FaissIndex, q: np.ndarray, n: int) -> None:
    """Prints the p50 of the exact and the ANN plan, each forced, for filters from 0.1 % to 3 %: the
    measurement behind the planner's ``exact_max_work``."""
    kept = index.planner
    for per_mille in (1, 4, 10, 30):
        flt = Filter(start_ns=0, end_ns=int(n * per_mille / 1000) * 1_000_000 - 1)  # the first rows, by time
        line = []
        for name, work in (("exact", 1 << 62), ("ann", 0)):
            index.planner = PlannerSettings(exact_max_work=work, oversample=kept.oversample)
            t, _ = _latencies(functools.partial(_one, index, q, flt), 100)
            line.append(f"{name} p50 {np.percentile(t, 50) * 1e3:.3f} ms ({index.search(q[0], K, flt).plan.kind})")
        print(f"crossover at {per_mille / 10:.1f}% ({int(n * per_mille / 1000)} rows x {DIM}): " + ", ".join(line),
              flush=True)
    index.planner = kept


def run(quick: bool = False) -> list[Figure]:
    faiss.omp_set_num_threads(1)
    n = 50_000 if quick else 1_000_000
    allx = clustered_unit_vectors(n + N_QUERIES, DIM)
    x, q = allx[:n], np.ascontiguousarray(allx[n:])
    del allx
    allowed = np.arange(n) % 100 == 7
    rows = np.flatnonzero(allowed)
    truth, truth_f = _truth(x, q), _truth(x, q, rows)
    home = Path(tempfile.mkdtemp(prefix="bench-vindex-"))
    try:
        raw_s = _save_fsync(x, home / "raw.npy")
        (home / "raw.npy").unlink()
        # The limits: brute force over the same vectors, one query at a time, one thread.
        bf_t, _ = _latencies(lambda i: faiss.knn(q[i : i + 1], x, K, metric=faiss.METRIC_INNER_PRODUCT)[1][0],
                             N_LIMIT_QUERIES)
        bff_t = _filtered_brute_force(x, q, allowed)
        gc.collect()
        # Ours.
        meta = _metadata(n)
        index = FaissIndex.open(home / "index", DIM)
        t0 = time.perf_counter()
        index.upsert(list(range(n)), x, meta)
        build_s = time.perf_counter() - t0
        del meta
        gc.collect()
        ours_t, ours = _latencies(functools.partial(_one, index, q, None), N_QUERIES)
        plan = index.search(q[0], K).plan
        ours_ft, ours_f = _latencies(functools.partial(_one, index, q, FILTER), N_QUERIES)
        plan_f = index.search(q[0], K, FILTER).plan
        _crossover(index, q, n)
        nlist = index.nlist
        t0 = time.perf_counter()
        index.persist()
        persist_s = time.perf_counter() - t0
        index.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    ms = 1e3
    where = f"n={n}x{DIM}, one thread"
    return [
        Figure("vindex_knn_p50_latency", float(np.percentile(ours_t, 50)) * ms, "ms",
               float(np.percentile(bf_t, 50)) * ms, "brute force, same vectors, one thread", False,
               f"{where}; {plan.explain()}"),
        Figure("vindex_knn_p99_latency", float(np.percentile(ours_t, 99)) * ms, "ms",
               float(np.percentile(bf_t, 99)) * ms, "brute force, same vectors, one thread", False, where),
        Figure("vindex_knn_recall_at_10", _recall(ours, truth), "", 1.0, "exact top 10", True, where),
        Figure("vindex_knn_filtered_p50_latency", float(np.percentile(ours_ft, 50)) * ms, "ms",
               float(np.percentile(bff_t, 50)) * ms, "brute force + same 1% filter, one thread", False,
               f"{where}; {plan_f.explain()}"),
        Figure("vindex_knn_filtered_p99_latency", float(np.percentile(ours_ft, 99)) * ms, "ms",
               float(np.percentile(bff_t, 99)) * ms, "brute force + same 1% filter, one thread", False, where),
        Figure("vindex_knn_filtered_recall_at_10", _recall(ours_f, truth_f), "", 1.0, "exact top 10 in the filter",
               True, where),
        Figure("vindex_build_s", build_s, "s", raw_s, "np.save + fsync of the vectors", False,
               f"{where}; IVF nlist={nlist}, trained on a sample"),
        Figure("vindex_persist_s", persist_s, "s", raw_s, "np.save + fsync of the vectors", False, where),
    ]


def compare(n: int) -> None:
    """IVF against HNSW on the same data, one thread: build, then recall and latency per search setting."""
    faiss.omp_set_num_threads(1)
    allx = clustered_unit_vectors(n + N_QUERIES, DIM)
    x, q = allx[:n], np.ascontiguousarray(allx[n:])
    del allx
    allowed = np.arange(n) % 100 == 7
    truth, truth_f = _truth(x, q), _truth(x, q, np.flatnonzero(allowed))
    sel = faiss.IDSelectorBitmap(bitmap := np.packbits(allowed, bitorder="little"))
    del bitmap

    def report(label: str, index: Any, kind: str, value: int) -> None:
        for flt, want in ((None, truth), (sel, truth_f)):
            p = faiss.SearchParametersIVF(sel=flt, nprobe=value) if kind == "ivf" else \
                faiss.SearchParametersHNSW(sel=flt, efSearch=value)
            t, found = _latencies(functools.partial(_one_raw, index, q, p), N_QUERIES)
            print(f"{label:<24} {'1% filter' if flt else 'unfiltered':<10} recall@10 {_recall(found, want):.3f} "
                  f"p50 {np.percentile(t, 50) * 1e3:7.3f} ms  p99 {np.percentile(t, 99) * 1e3:7.3f} ms", flush=True)

    nlist = 4096 if n >= 500_000 else 1024
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    ivf.train(x[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
    ivf.add(x)
    print(f"IVF{nlist},Flat build {time.perf_counter() - t0:.1f} s", flush=True)
    for nprobe in (8, 16, 32, 128):
        report(f"IVF nprobe={nprobe}", ivf, "ivf", nprobe)
    del ivf
    gc.collect()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    hnsw.add(x)
    print(f"HNSW32 (efConstruction 40) build {time.perf_counter() - t0:.1f} s", flush=True)
    for ef in (16, 64, 256, 1024):
        report(f"HNSW efSearch={ef}", hnsw, "hnsw", ef)


def main() -> None:
    parser = argparse.ArgumentParser(description="Vector index benchmark (one thread).")
    parser.add_argument("--quick", action="store_true", help="50,000 vectors instead of 1,000,000")
    parser.add_argument("--compare", type=int, metavar="N", default=0, help="IVF against HNSW on N vectors instead")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
    else:
        print_figures(run(quick=args.quick))


if __name__ == "__main__":
    main()
