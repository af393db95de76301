"""What goes into the vector index and what comes out: ids, metadata, filters, plans and results.

An id is an ``int`` or a ``str`` (``1`` and ``"1"`` are different ids); a back-end that stores one
key type encodes them with :func:`encode_id` (``"i:1"``, ``"s:1"``). Names (vehicle ids, tags,
trigger kinds) are 1-128 characters of letters, digits and `` _.:/+-`` so that every back-end can
carry them, including inside a query expression, without escaping rules of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from downstream.mining.errors import BadMetadata
from shared.segment import Source

VectorId = int | str
#: Most tags (and most trigger kinds) one row may carry; a Milvus ARRAY field needs a capacity.
MAX_NAMES = 64

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/+-]{0,127}")
_STR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,199}")


def check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadMetadata(f"{what} {name!r}: use 1-128 letters, digits or ' _.:/+-', starting with a letter or digit")
    return name


def check_id(vid: VectorId) -> VectorId:
    if isinstance(vid, bool) or not isinstance(vid, int | str):
        raise BadMetadata(f"id {vid!r}: ids are int or str")
    if isinstance(vid, int):
        if not -(2**63) <= vid < 2**63:
            raise BadMetadata(f"id {vid}: int ids must fit in 64 bits")
    elif not _STR_ID.fullmatch(vid):
        raise BadMetadata(f"id {vid!r}: str ids are 1-200 letters, digits or '_.:/+-'")
    return vid


def encode_id(vid: VectorId) -> str:
    """``"i:<int>"`` or ``"s:<str>"``: one string key per id, distinct for ``1`` and ``"1"``."""
    return f"i:{vid}" if isinstance(vid, int) else f"s:{vid}"


def decode_id(key: str) -> VectorId:
    if key.startswith("i:"):
        return int(key[2:])
    if key.startswith("s:"):
        return key[2:]
    raise BadMetadata(f"stored key {key!r} is not an encoded id")


def _names(what: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise BadMetadata(f"{what}: expected a collection of names, got the string {values!r}")
    out = frozenset(check_name(what, v) for v in values)
    if len(out) > MAX_NAMES:
        raise BadMetadata(f"{len(out)} {what}s: at most {MAX_NAMES}; keep the ones worth filtering on")
    return out


@dataclass(frozen=True, slots=True)
class VectorMetadata:
    """The filterable facts of one segment: who recorded it, when (ns, vehicle clock), what it shows."""

    vehicle_id: str
    start_ns: int
    end_ns: int
    tags: frozenset[str] = frozenset()
    triggers: frozenset[str] = frozenset()
    source: Source = Source.REAL

    def __post_init__(self) -> None:
        check_name("vehicle_id", self.vehicle_id)
        if not (isinstance(self.start_ns, int) and isinstance(self.end_ns, int)) or self.end_ns < self.start_ns:
            raise BadMetadata(f"time range [{self.start_ns}, {self.end_ns}] ns: need integers with start_ns <= end_ns")
        object.__setattr__(self, "tags", _names("tag", self.tags))
        object.__setattr__(self, "triggers", _names("trigger", self.triggers))
        object.__setattr__(self, "source", Source(self.source))


@dataclass(frozen=True, slots=True)
class Filter:
    """Which rows a query may return; every field left empty (or ``None``) constrains nothing.

    ``start_ns``/``end_ns``: the row's ``[start_ns, end_ns]`` must overlap this closed range (either
    bound may be open). ``tags_all``: the row has every one; ``tags_any``: at least one;
    ``triggers_any``: at least one of these trigger kinds fired in the row; ``sources``: REAL,
    SYNTHETIC or AUGMENTED.
    """

    vehicle_ids: frozenset[str] = frozenset()
    start_ns: int | None = None
    end_ns: int | None = None
    tags_all: frozenset[str] = frozenset()
    tags_any: frozenset[str] = frozenset()
    triggers_any: frozenset[str] = frozenset()
    sources: frozenset[Source] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "vehicle_ids", _names("vehicle_id", self.vehicle_ids))
        object.__setattr__(self, "tags_all", _names("tag", self.tags_all))
        object.__setattr__(self, "tags_any", _names("tag", self.tags_any))
        object.__setattr__(self, "triggers_any", _names("trigger", self.triggers_any))
        object.__setattr__(self, "sources", frozenset(Source(s) for s in self.sources))
        for bound in (self.start_ns, self.end_ns):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
                raise BadMetadata(f"filter time bound {bound!r}: expected an integer ns or None")
        if self.start_ns is not None and self.end_ns is not None and self.end_ns < self.start_ns:
            raise BadMetadata(f"filter time range [{self.start_ns}, {self.end_ns}] ns is inverted")

    @property
    def is_empty(self) -> bool:
        return not (self.vehicle_ids or self.tags_all or self.tags_any or self.triggers_any or self.sources
                    or self.start_ns is not None or self.end_ns is not None)


class PlanKind(StrEnum):
    EXACT = "exact"  # brute force over the rows that pass the filter
    ANN = "ann"  # the approximate index, the filter applied during its traversal
    EMPTY = "empty"  # no row passes the filter


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """How one search ran: the plan, how many rows the filter let through, the ANN parameters used."""

    kind: PlanKind
    backend: str
    n_rows: int
    n_candidates: int
    filtered: bool
    params: tuple[tuple[str, int], ...] = ()
    reason: str = ""

    @property
    def selectivity(self) -> float:
        """Fraction of the live rows that pass the filter (1.0 without one)."""
        return self.n_candidates / self.n_rows if self.n_rows else 0.0

    def explain(self) -> str:
        """One line for ``--explain``: plan, candidates out of rows, parameters, why."""
        params = " ".join(f"{k}={v}" for k, v in self.params)
        filt = f"filter passes {self.n_candidates}/{self.n_rows} rows ({self.selectivity:.4%})" if self.filtered \
            else f"{self.n_rows} rows, no filter"
        return f"{self.backend}: {self.kind.value}" + (f" [{params}]" if params else "") + f"; {filt}; {self.reason}"


@dataclass(frozen=True, slots=True, eq=False)
class SearchResult:
    """``ids``: shape (q, k), object array of ids, ``None`` where fewer than k rows qualified;
    ``distances``: shape (q, k) float32 cosine distances (1 - cos, in [0, 2]), ascending, ``inf``
    where ``ids`` is ``None``; ``plan``: how it ran."""

    ids: npt.NDArray[np.object_]
    distances: npt.NDArray[np.float32]
    plan: QueryPlan

    def hits(self, i: int = 0) -> list[tuple[VectorId, float]]:
        """Query ``i``'s hits as ``(id, distance)``, nearest first, padding dropped."""
        return [(vid, float(d)) for vid, d in zip(self.ids[i], self.distances[i], strict=True) if vid is not None]
