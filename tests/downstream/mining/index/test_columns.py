"""Columnar metadata: filters evaluated to bitmaps match a plain Python reference on random rows,
deletes and compaction keep rows and tags aligned, and the arrays round-trip through persistence."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.mining.errors import IndexCorrupt
from downstream.mining.index.columns import MetadataColumns
from downstream.mining.index.records import Filter, VectorMetadata
from shared.segment import Source

TAGS = ["rain", "night", "snow", "highway", "urban"]
TRIGGERS = ["hard_brake", "ttc", "ood"]


def _rows(n: int, seed: int = 0) -> list[VectorMetadata]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start = int(rng.integers(0, 10_000))
        out.append(VectorMetadata(f"veh{rng.integers(0, 7)}", start, start + int(rng.integers(0, 500)),
                                  frozenset(t for t in TAGS if rng.random() < 0.3),
                                  frozenset(t for t in TRIGGERS if rng.random() < 0.2),
                                  list(Source)[int(rng.integers(0, 3))]))
    return out


def _passes(m: VectorMetadata, f: Filter) -> bool:
    return ((not f.vehicle_ids or m.vehicle_id in f.vehicle_ids)
            and (f.end_ns is None or m.start_ns <= f.end_ns) and (f.start_ns is None or m.end_ns >= f.start_ns)
            and f.tags_all <= m.tags and (not f.tags_any or bool(f.tags_any & m.tags))
            and (not f.triggers_any or bool(f.triggers_any & m.triggers))
            and (not f.sources or m.source in f.sources))


FILTERS = [
    Filter(),
    Filter(vehicle_ids=frozenset({"veh1", "veh9"})),
    Filter(start_ns=2_000, end_ns=2_100),
    Filter(tags_all=frozenset({"rain", "night"})),
    Filter(tags_any=frozenset({"snow", "urban"}), triggers_any=frozenset({"ttc"})),
    Filter(sources=frozenset({Source.AUGMENTED, Source.SYNTHETIC}), end_ns=5_000),
    Filter(tags_all=frozenset({"never-seen"})),
    Filter(vehicle_ids=frozenset({"veh2"}), tags_all=frozenset({"highway"}), tags_any=frozenset({"rain", "snow"}),
           triggers_any=frozenset({"hard_brake", "ood"}), start_ns=1_000, sources=frozenset({Source.REAL})),
]


@pytest.mark.parametrize("flt", FILTERS)
def test_mask_matches_reference(flt: Filter) -> None:
    rows = _rows(3000)
    cols = MetadataColumns()
    cols.append(rows[:1000])
    cols.append(rows[1000:])
    cols.kill([5, 17, 2999])
    want = np.array([_passes(m, flt) and i not in (5, 17, 2999) for i, m in enumerate(rows)])
    np.testing.assert_array_equal(cols.mask(flt), want)


def test_compact_and_round_trip_keep_rows_aligned() -> None:
    rows = _rows(500, seed=3)
    cols = MetadataColumns()
    cols.append(rows)
    cols.kill(np.arange(0, 500, 2))
    keep = np.flatnonzero(cols.alive)
    small = cols.compact(keep)
    again = MetadataColumns.from_arrays({k: np.asarray(v) for k, v in small.to_arrays().items()})
    kept = [rows[i] for i in keep]
    for flt in FILTERS:
        np.testing.assert_array_equal(again.mask(flt), [_passes(m, flt) for m in kept])


def test_missing_or_ragged_arrays_are_corrupt() -> None:
    cols = MetadataColumns()
    cols.append(_rows(10))
    arrays = cols.to_arrays()
    with pytest.raises(IndexCorrupt):
        MetadataColumns.from_arrays({k: v for k, v in arrays.items() if k != "end_ns"})
    with pytest.raises(IndexCorrupt):
        MetadataColumns.from_arrays({**arrays, "end_ns": arrays["end_ns"][:5]})
