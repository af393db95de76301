"""The embedded vector index: FAISS IVF-Flat (inner product on unit rows) plus columnar metadata.

Why IVF and not HNSW, measured on one thread (``faiss.omp_set_num_threads(1)``) on this project's
2-core shared machine, 1,000,000 × 512 clustered unit vectors (``bench/bench_vector_index.py``
generates them), k = 10, 200 queries one at a time:

==========================  =======  =========  ============  ==========================
index (search setting)      build    recall@10  p50 (ms)      1 % filter: recall@10, p50
==========================  =======  =========  ============  ==========================
IVF4096,Flat (nprobe 8)     421 s    1.000      0.47          0.906, 0.21 ms
IVF4096,Flat (nprobe 128)   (same)   1.000      noise (16.8)  0.961, 0.92 ms
HNSW32, efC 40 (ef 64)      800 s    0.820      0.27          0.146, 0.29 ms
HNSW32, efC 40 (ef 256)     (same)   0.891      0.97          0.698, 1.17 ms
HNSW32, efC 40 (ef 1024)    (same)   -          -             0.820, 28.2 ms
==========================  =======  =========  ============  ==========================

Brute force over the same vectors took 474 ms a query. Under the 1 % filter HNSW's recall collapses
(0.15 at ef 64: FAISS #4727) while IVF keeps 0.91-0.96, because an ``IDSelector`` only skips rows in
the lists it scans and more lists can be probed; IVF also trained and filled in half the time HNSW
took to build its graph, and its lists double as the row store for the exact plan. The price:
well-separated clusters suit IVF (and starve an HNSW graph built with efConstruction 40 of links
between them), and the lists must be retrained as the index grows (below). Latencies were taken
on a shared 2-core machine under load; single p50s and all p99s there are noisy. The build column
trained the IVF with 64 samples a list and 25 k-means rounds; the index now trains with 40 and 10
(``vindex_build_s`` in ``bench/results.json`` is its build). ``python -m bench.bench_vector_index
--compare 1000000`` runs the comparison again (figures differ by the machine's noise).

With the planner on top (``bench/bench_vector_index.py``, same data, 300 queries, one thread): p50
1.77 ms at recall@10 1.000 unfiltered (brute force: 153 ms); with the 1 % filter, p50 3.56 ms
(nprobe widened to 320) at recall@10 0.976; build 321 s; crash-safe persist 2.0 s.

Vectors are kept once, inside the IVF lists; a direct map (8 bytes a row) lets the exact plan and
:meth:`FaissIndex.neighbours_of` gather rows by number (``reconstruct_batch``). Until
``min_train_rows`` rows exist nothing is trained and every search is exact over a plain array.
The IVF is trained on a sample with ``nlist`` ≈ 4·√n (a power of two); when the live rows have
grown 4× past the training size, the next upsert retrains and compacts (deleted rows go), so the
lists stay short: amortised O(1) per row, but that one upsert takes as long as a build.

Not thread-safe: one writer, and no search while it writes (the mining service owns one instance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import faiss as faiss_typed
import numpy as np
import numpy.typing as npt

from downstream.mining.errors import BadMetadata, IndexCorrupt, UnknownId
from downstream.mining.index import durable
from downstream.mining.index.columns import MetadataColumns
from downstream.mining.index.exact import F32, I64, array_module, topk_exact, unit_rows
from downstream.mining.index.planner import PlannerSettings, choose
from downstream.mining.index.records import (
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

# The stubs that faiss ships lack DirectMap and the keyword forms of its parameter classes.
faiss: Any = faiss_typed

FORMAT = "avdata.faiss-ivf/1"
GROWTH_BEFORE_RETRAIN = 4
TRAIN_SAMPLES_PER_LIST = 40
TRAIN_ITERATIONS = 10  # k-means rounds; coarse lists need no more
_CHUNK = 65_536


def nlist_for(n: int) -> int:
    """Lists for ``n`` rows: the power of two nearest 4·√n, at least 16, and at most n/39 (FAISS
    wants 39 training points a list)."""
    target = 4 * math.sqrt(max(n, 1))
    nlist = 2 ** round(math.log2(target))
    return int(max(16, min(nlist, 65_536, 2 ** int(math.log2(max(n // 39, 16))))))


class FaissIndex:
    """A :class:`~downstream.mining.index.protocol.VectorIndex` in memory, persisted to ``directory``."""

    backend = "faiss"

    def __init__(self, dim: int, directory: Path | None = None, *, nprobe_fraction: float = 1 / 128,
                 min_nprobe: int = 8, min_train_rows: int = 20_000, planner: PlannerSettings | None = None,
                 array_module_name: str = "numpy") -> None:
        if dim <= 0:
            raise BadMetadata(f"dim {dim}: must be positive")
        self._dim, self.directory = dim, directory
        self.nprobe_fraction, self.min_nprobe = nprobe_fraction, min_nprobe
        self.min_train_rows = max(min_train_rows, 39 * 16)
        self.planner = planner or PlannerSettings()
        self._xp: ModuleType = array_module(array_module_name)
        self._cols = MetadataColumns()
        self._ids: list[VectorId] = []
        self._id_arr: npt.NDArray[np.object_] = np.empty(0, dtype=object)
        self._row_of: dict[VectorId, int] = {}
        self._staged: list[F32] = []
        self._ivf: Any = None
        self._trained_rows = 0

    @classmethod
    def open(cls, directory: Path, dim: int, **options: Any) -> FaissIndex:
        """The index persisted in ``directory``, or a new empty one bound to it."""
        index = cls(dim, directory, **options)
        gen = durable.current_generation(directory)
        if gen is not None:
            index._load(gen)
        return index

    # ---- Protocol: size -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    def count(self, flt: Filter | None = None) -> int:
        return len(self._row_of) if flt is None or flt.is_empty else int(self._cols.mask(flt).sum())

    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist) if self._ivf is not None else 0

    @property
    def nprobe(self) -> int:
        return min(self.nlist, max(self.min_nprobe, round(self.nlist * self.nprobe_fraction)))

    # ---- Protocol: writes ---------------------------------------------------------------------------

    def upsert(self, ids: Sequence[VectorId], vectors: Any, metadata: Sequence[VectorMetadata]) -> None:
        rows = unit_rows(vectors, self._dim)
        keys = [check_id(v) for v in ids]
        if not (len(keys) == len(rows) == len(metadata)):
            raise BadMetadata(f"{len(keys)} ids, {len(rows)} vectors and {len(metadata)} metadata: one of each per row")
        if len(set(keys)) != len(keys):
            raise BadMetadata("an id appears twice in one upsert; send each id once")
        if not all(isinstance(m, VectorMetadata) for m in metadata):
            raise BadMetadata("metadata must be VectorMetadata records")
        self._kill([self._row_of[k] for k in keys if k in self._row_of])
        first = self._cols.n
        self._cols.append(metadata)
        self._ids.extend(keys)
        self._id_arr = np.empty(0, dtype=object)  # rebuilt on the next search
        self._row_of.update((k, first + i) for i, k in enumerate(keys))
        if self._ivf is None:
            self._staged.append(rows)
            if self._cols.n >= self.min_train_rows:
                self._rebuild()
        else:
            self._ivf.add(rows)
            if len(self._row_of) >= GROWTH_BEFORE_RETRAIN * self._trained_rows:
                self._rebuild()

    def delete(self, ids: Sequence[VectorId]) -> int:
        rows = [self._row_of.pop(v) for v in ids if v in self._row_of]
        self._kill(rows)
        return len(rows)

    def _kill(self, rows: list[int]) -> None:
        if rows:
            self._cols.kill(rows)

    # ---- Protocol: reads ----------------------------------------------------------------------------

    def search(self, queries: Any, k: int, flt: Filter | None = None) -> SearchResult:
        return self._search(unit_rows(queries, self._dim, "queries"), k, flt, exclude=None)

    def neighbours_of(self, ids: Sequence[VectorId], k: int, flt: Filter | None = None) -> SearchResult:
        """The ``k`` nearest other rows of each stored id (the row itself excluded)."""
        try:
            rows = np.asarray([self._row_of[v] for v in ids], dtype=np.int64)
        except KeyError as exc:
            raise UnknownId(f"id {exc.args[0]!r} is not in the index; add it first") from None
        return self._search(self._vectors(rows), k, flt, exclude=rows)

    def _search(self, queries: F32, k: int, flt: Filter | None, exclude: I64 | None) -> SearchResult:
        if k <= 0:
            raise BadMetadata(f"k = {k}: ask for at least one neighbour")
        want = k + (exclude is not None)
        mask = self._cols.mask(flt)
        n_cand = int(mask.sum())
        filtered = flt is not None and not flt.is_empty
        plan = choose(backend=self.backend, n_rows=len(self._row_of), n_candidates=n_cand, filtered=filtered,
                      dim=self._dim, k=want, ann_ready=self._ivf is not None, ann_params=self._ann_params,
                      settings=self.planner)
        if plan.kind is PlanKind.EMPTY:
            rows = np.full((len(queries), want), -1, dtype=np.int64)
            dist = np.full((len(queries), want), np.inf, dtype=np.float32)
        elif plan.kind is PlanKind.EXACT:
            cand = np.flatnonzero(mask)
            pos, dist = topk_exact(queries, self._vectors(cand), want, self._xp)
            rows = np.where(pos >= 0, cand[np.maximum(pos, 0)], -1)
        else:
            rows, dist = self._ann(queries, want, mask, plan, dead=n_cand < self._cols.n)
        if exclude is not None:
            rows, dist = _drop_self(rows, dist, exclude, k)
        return SearchResult(self._id_array()[rows], dist, plan)

    def _ann_params(self, n_candidates: int, k: int) -> tuple[tuple[str, int], ...] | None:
        # Under a filter the nearest allowed rows lie farther out, over more lists: probe
        # nprobe/sqrt(selectivity) lists (measured: at 1 % the lists needed grew ~10x), and at least
        # enough to hold oversample·k allowed rows (about nprobe·n_candidates/nlist of them). Exact
        # instead when that means a quarter of the lists or more.
        selectivity = n_candidates / max(len(self._row_of), 1)
        need = max(math.ceil(self.nprobe / math.sqrt(selectivity)),
                   math.ceil(self.planner.oversample * k * self.nlist / n_candidates))
        if need > self.nlist // 4:
            return None
        return (("nprobe", need),)

    def _ann(self, queries: F32, k: int, mask: npt.NDArray[np.bool_], plan: QueryPlan, dead: bool) -> \
            tuple[I64, F32]:
        nprobe = dict(plan.params)["nprobe"]
        bitmap = np.packbits(mask, bitorder="little") if dead else None
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if bitmap is not None:
            params.sel = faiss.IDSelectorBitmap(bitmap)  # filter applied while scanning the lists
        sims, rows = self._ivf.search(queries, k, params=params)
        dist = np.where(rows >= 0, np.clip(1.0 - sims, 0.0, 2.0), np.inf).astype(np.float32)
        return rows.astype(np.int64), dist

    def _vectors(self, rows: I64) -> F32:
        if self._ivf is not None:
            return np.asarray(self._ivf.reconstruct_batch(rows), dtype=np.float32)
        if len(self._staged) > 1:
            self._staged = [np.concatenate(self._staged)]
        return self._staged[0][rows] if self._staged else np.empty((0, self._dim), dtype=np.float32)

    def _id_array(self) -> npt.NDArray[np.object_]:
        """Row -> id, with one extra ``None`` at the end so that row -1 (padding) maps to ``None``."""
        if len(self._id_arr) != len(self._ids) + 1:
            self._id_arr = np.empty(len(self._ids) + 1, dtype=object)
            self._id_arr[:-1] = self._ids
            self._id_arr[-1] = None
        return self._id_arr

    # ---- training, compaction -------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Compact away dead rows; train a new IVF when enough rows remain, else keep them staged."""
        keep = np.flatnonzero(self._cols.alive)
        if self._ivf is None and len(keep) == self._cols.n:
            chunks = self._staged  # nothing to compact: no copy of the vectors
        else:
            chunks = [self._vectors(keep[s : s + _CHUNK]) for s in range(0, len(keep), _CHUNK)]
        self._cols = self._cols.compact(keep)
        self._ids = [self._ids[r] for r in keep]
        self._row_of = {v: i for i, v in enumerate(self._ids)}
        self._ivf, self._staged, self._id_arr = None, chunks, np.empty(0, dtype=object)
        n = len(keep)
        if n < self.min_train_rows:
            return
        nlist = nlist_for(n)
        sample = np.random.default_rng(n).choice(n, size=min(n, TRAIN_SAMPLES_PER_LIST * nlist), replace=False)
        quantizer = faiss.IndexFlatIP(self._dim)
        ivf = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.niter = TRAIN_ITERATIONS
        ivf.train(self._vectors(np.sort(sample)))
        ivf.set_direct_map_type(faiss.DirectMap.Array)
        while self._staged:
            ivf.add(self._staged.pop(0))
        self._ivf, self._trained_rows = ivf, n

    # ---- persistence ------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the in-memory index (nothing is written: call :meth:`persist` first)."""
        self._ivf, self._staged, self._row_of = None, [], {}

    def persist(self) -> None:
        """Write the index to its directory as a new generation (see :mod:`durable`)."""
        if self.directory is None:
            raise BadMetadata("this index has no directory to persist to; open it with FaissIndex.open(path, dim)")
        ids = np.asarray([encode_id(v) for v in self._ids], dtype=np.str_)
        files = {"columns.npz": lambda p: _save_npz(p, self._cols.to_arrays()),
                 "ids.npy": lambda p: _save_npy(p, ids)}
        if self._ivf is not None:
            files["ivf.faiss"] = lambda p: faiss.write_index(self._ivf, str(p))
        else:
            files["staged.npy"] = lambda p: _save_npy(p, self._vectors(np.arange(self._cols.n)))
        manifest = {"format": FORMAT, "dim": self._dim, "rows": self._cols.n, "trained_rows": self._trained_rows}
        durable.write_generation(self.directory, manifest, files)

    def _load(self, gen: Path) -> None:
        manifest = durable.read_manifest(gen)
        if manifest.get("format") != FORMAT or manifest.get("dim") != self._dim:
            raise IndexCorrupt(f"{gen}: format {manifest.get('format')!r} dim {manifest.get('dim')!r}, expected "
                               f"{FORMAT!r} dim {self._dim}; open it with the dim it was built with")
        with np.load(gen / "columns.npz", allow_pickle=False) as npz:
            self._cols = MetadataColumns.from_arrays({k: npz[k] for k in npz.files})
        self._ids = [decode_id(str(s)) for s in np.load(gen / "ids.npy", allow_pickle=False)]
        if (gen / "ivf.faiss").exists():
            self._ivf = faiss.read_index(str(gen / "ivf.faiss"))
            stored = int(self._ivf.ntotal)
        else:
            self._staged = [np.load(gen / "staged.npy", allow_pickle=False)]
            stored = len(self._staged[0])
        if not (len(self._ids) == self._cols.n == stored == manifest.get("rows")):
            raise IndexCorrupt(f"{gen}: ids, metadata and vectors disagree on the row count; rebuild the index")
        self._trained_rows = int(manifest.get("trained_rows", 0))  # type: ignore[call-overload]
        alive = self._cols.alive
        self._row_of = {v: r for r, v in enumerate(self._ids) if alive[r]}


def _drop_self(rows: I64, dist: F32, exclude: I64, k: int) -> tuple[I64, F32]:
    """Per query, remove its own row (or, when it is absent, the farthest hit), keeping ``k`` columns."""
    keep = rows != exclude[:, None]
    keep[keep.sum(axis=1) > k, -1] = False
    return rows[keep].reshape(len(rows), k), dist[keep].reshape(len(rows), k)


def _save_npy(path: Path, arr: npt.NDArray[Any]) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def _save_npz(path: Path, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
