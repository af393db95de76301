"""Segment metadata as columnar NumPy arrays, and a :class:`Filter` evaluated to a row bitmap.

Row ``r`` is the ``r``-th vector ever added; rows are never reused, so a deleted or replaced
(upserted) row stays, marked dead in ``alive``, until the index is rebuilt. Columns: vehicle
(int32 codes into a vocabulary), ``start_ns``/``end_ns`` (int64), source (int8 codes), and tags and
triggers as (row, code) pairs, one pair per tag of a row, so that any vocabulary size costs memory
in proportion to the tags actually used. A filter costs a few vectorised passes over these arrays
(about 1 ms per term per million rows), never a Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.mining.errors import IndexCorrupt
from downstream.mining.index.records import Filter, VectorMetadata
from shared.segment import Source

Mask = npt.NDArray[np.bool_]
SOURCES = tuple(Source)


class _Grow:
    """An append-only 1-D array with amortised O(1) appends (capacity doubles)."""

    def __init__(self, dtype: type[np.generic], data: npt.NDArray[np.generic] | None = None) -> None:
        self._buf: npt.NDArray[np.generic] = np.empty(16, dtype=dtype) if data is None else data.astype(dtype)
        self.size = 0 if data is None else len(data)

    def extend(self, values: npt.ArrayLike) -> None:
        arr = np.asarray(values, dtype=self._buf.dtype)
        need = self.size + len(arr)
        if need > len(self._buf):
            grown = np.empty(max(need, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[: self.size] = self._buf[: self.size]
            self._buf = grown
        self._buf[self.size : need] = arr
        self.size = need

    @property
    def view(self) -> npt.NDArray[Any]:
        return self._buf[: self.size]


class _Vocab:
    def __init__(self, names: Sequence[str] = ()) -> None:
        self.names = list(names)
        self.codes = {n: i for i, n in enumerate(self.names)}

    def code(self, name: str) -> int:
        found = self.codes.get(name)
        if found is None:
            found = self.codes[name] = len(self.names)
            self.names.append(name)
        return found

    def known(self, names: frozenset[str]) -> list[int]:
        return [self.codes[n] for n in names if n in self.codes]


class MetadataColumns:
    """The metadata of every row, and which rows are alive."""

    def __init__(self) -> None:
        self.vehicles, self.tag_vocab, self.trigger_vocab = _Vocab(), _Vocab(), _Vocab()
        self._vehicle, self._start, self._end = _Grow(np.int32), _Grow(np.int64), _Grow(np.int64)
        self._source, self._alive = _Grow(np.int8), _Grow(np.bool_)
        self._tag_rows, self._tag_codes = _Grow(np.int64), _Grow(np.int32)
        self._trig_rows, self._trig_codes = _Grow(np.int64), _Grow(np.int32)

    @property
    def n(self) -> int:
        """Rows ever added (alive or not)."""
        return self._alive.size

    @property
    def alive(self) -> Mask:
        return self._alive.view

    def append(self, metas: Sequence[VectorMetadata]) -> None:
        """Add one row per item, alive, at rows ``n .. n + len(metas) - 1``."""
        first = self.n
        self._vehicle.extend([self.vehicles.code(m.vehicle_id) for m in metas])
        self._start.extend([m.start_ns for m in metas])
        self._end.extend([m.end_ns for m in metas])
        self._source.extend([SOURCES.index(m.source) for m in metas])
        for rows, codes, vocab, attr in ((self._tag_rows, self._tag_codes, self.tag_vocab, "tags"),
                                         (self._trig_rows, self._trig_codes, self.trigger_vocab, "triggers")):
            pairs = [(first + i, vocab.code(name)) for i, m in enumerate(metas) for name in getattr(m, attr)]
            if pairs:
                arr = np.asarray(pairs, dtype=np.int64)
                rows.extend(arr[:, 0])
                codes.extend(arr[:, 1])
        self._alive.extend(np.ones(len(metas), dtype=np.bool_))

    def kill(self, rows: npt.ArrayLike) -> None:
        self.alive[np.asarray(rows, dtype=np.int64)] = False

    def mask(self, flt: Filter | None) -> Mask:
        """Alive rows that pass ``flt`` (all alive rows when ``flt`` is ``None`` or empty)."""
        out = self.alive.copy()
        if flt is None or flt.is_empty:
            return out
        if flt.vehicle_ids:
            out &= np.isin(self._vehicle.view, self.vehicles.known(flt.vehicle_ids))
        if flt.end_ns is not None:
            out &= self._start.view <= flt.end_ns
        if flt.start_ns is not None:
            out &= self._end.view >= flt.start_ns
        if flt.sources:
            out &= np.isin(self._source.view, [SOURCES.index(s) for s in flt.sources])
        tags = (self._tag_rows.view, self._tag_codes.view)
        if flt.tags_all:
            out &= self._count(tags, self.tag_vocab.known(flt.tags_all)) == len(flt.tags_all)
        if flt.tags_any:
            out &= self._count(tags, self.tag_vocab.known(flt.tags_any)) > 0
        if flt.triggers_any:
            trig = (self._trig_rows.view, self._trig_codes.view)
            out &= self._count(trig, self.trigger_vocab.known(flt.triggers_any)) > 0
        return out

    def _count(self, pairs: tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]], codes: list[int]) -> \
            npt.NDArray[np.int64]:
        """Per row, how many of ``codes`` it carries (names are unique per row, so this counts names)."""
        rows, row_codes = pairs
        hit = rows[np.isin(row_codes, codes)] if codes else rows[:0]
        return np.bincount(hit.astype(np.int64), minlength=self.n)

    # ---- persistence: plain arrays, no pickles ----------------------------------------------------

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "vehicle": self._vehicle.view, "start_ns": self._start.view, "end_ns": self._end.view,
            "source": self._source.view, "alive": self._alive.view,
            "tag_rows": self._tag_rows.view, "tag_codes": self._tag_codes.view,
            "trig_rows": self._trig_rows.view, "trig_codes": self._trig_codes.view,
            "vehicle_vocab": np.asarray(self.vehicles.names, dtype=np.str_),
            "tag_vocab": np.asarray(self.tag_vocab.names, dtype=np.str_),
            "trigger_vocab": np.asarray(self.trigger_vocab.names, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> MetadataColumns:
        cols = cls()
        try:
            cols.vehicles = _Vocab([str(v) for v in arrays["vehicle_vocab"]])
            cols.tag_vocab = _Vocab([str(v) for v in arrays["tag_vocab"]])
            cols.trigger_vocab = _Vocab([str(v) for v in arrays["trigger_vocab"]])
            cols._vehicle, cols._start = _Grow(np.int32, arrays["vehicle"]), _Grow(np.int64, arrays["start_ns"])
            cols._end, cols._source = _Grow(np.int64, arrays["end_ns"]), _Grow(np.int8, arrays["source"])
            cols._alive = _Grow(np.bool_, arrays["alive"])
            cols._tag_rows, cols._tag_codes = _Grow(np.int64, arrays["tag_rows"]), _Grow(np.int32, arrays["tag_codes"])
            cols._trig_rows = _Grow(np.int64, arrays["trig_rows"])
            cols._trig_codes = _Grow(np.int32, arrays["trig_codes"])
        except KeyError as exc:
            raise IndexCorrupt(f"metadata columns lack {exc}; the index directory is damaged, rebuild it") from None
        n = cols.n
        if not all(c.size == n for c in (cols._vehicle, cols._start, cols._end, cols._source)):
            raise IndexCorrupt("metadata columns differ in length; the index directory is damaged, rebuild it")
        return cols

    def compact(self, keep: npt.NDArray[np.int64]) -> MetadataColumns:
        """The columns of rows ``keep`` only (in that order), renumbered ``0 .. len(keep) - 1``."""
        arrays = self.to_arrays()
        remap = np.full(self.n, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        out = dict(arrays)
        for name in ("vehicle", "start_ns", "end_ns", "source", "alive"):
            out[name] = arrays[name][keep]
        for rows, codes in (("tag_rows", "tag_codes"), ("trig_rows", "trig_codes")):
            new_rows = remap[arrays[rows].astype(np.int64)]
            ok = new_rows >= 0
            out[rows], out[codes] = new_rows[ok], arrays[codes][ok]
        return MetadataColumns.from_arrays(out)
