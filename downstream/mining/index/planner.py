"""The per-query choice between exact search over the filtered rows and the ANN index.

The filter is evaluated first, inside the index, to a bitmap, so the number of rows it lets through
(``n_candidates``) is known before the search. Then:

- no candidate: ``EMPTY``;
- the ANN index is not built yet, or ``n_candidates × dim <= exact_max_work``: ``EXACT``, a BLAS
  matmul over the gathered candidate rows. Cheap because there are few, and exact because ANN
  recall collapses under restrictive filters: the graph or the probed lists hold too few allowed
  rows (FAISS #4727, #3186). The default, 2,048,000, is OpenSearch's (#1049), checked here on
  1,000,000 × 512 on one thread (``bench/bench_vector_index.py`` prints the crossover): p50 of the
  exact plan against the filtered IVF for 1,000 / 4,000 / 10,000 / 30,000 candidates was 3.4 / 6.3
  / 11.1 / 38.2 ms against 4.2 / 2.8 / 2.9 / 3.9 ms. Below ~2,000 candidates exact is also the
  faster; up to the threshold (4,000 at 512-d) it costs at most ~2× the ANN, well inside the 20 ms
  goal, and gives exact recall where the filtered ANN gives ~0.95;
- otherwise ``ANN`` with the filter applied during the traversal (an ``IDSelector`` in FAISS, a
  filter expression in Milvus), its search parameter widened in proportion to how selective the
  filter is (each back-end supplies the rule, :data:`AnnParams`); when the widened search would
  visit the whole index anyway, ``EXACT`` again, since the gathered rows are fewer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from downstream.mining.index.records import PlanKind, QueryPlan

#: Back-end rule: ``(n_candidates, k) -> ANN parameters`` for that many allowed rows, or ``None`` when
#: the ANN search would have to visit the whole index to find them.
AnnParams = Callable[[int, int], tuple[tuple[str, int], ...] | None]


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """``exact_max_work``: candidates × dim at or below which the exact plan runs.
    ``oversample``: under a filter, widen the ANN search until it expects ``oversample × k`` allowed
    rows among those it visits."""

    exact_max_work: int = 2_048_000
    oversample: float = 4.0


def choose(*, backend: str, n_rows: int, n_candidates: int, filtered: bool, dim: int, k: int, ann_ready: bool,
           ann_params: AnnParams, settings: PlannerSettings) -> QueryPlan:
    """The plan for one search over ``n_rows`` live rows of which ``n_candidates`` pass the filter."""
    def plan(kind: PlanKind, reason: str, params: tuple[tuple[str, int], ...] = ()) -> QueryPlan:
        return QueryPlan(kind, backend, n_rows, n_candidates, filtered, params, reason)

    if n_candidates == 0:
        return plan(PlanKind.EMPTY, "no row passes the filter" if filtered else "the index is empty")
    if not ann_ready:
        return plan(PlanKind.EXACT, "the ANN index is not built yet (too few rows to train it)")
    work = n_candidates * dim
    if work <= settings.exact_max_work:
        return plan(PlanKind.EXACT, f"candidates x dim = {work} <= {settings.exact_max_work}")
    params = ann_params(n_candidates, k)
    if params is None:
        return plan(PlanKind.EXACT, "the ANN search would visit the whole index for so few candidates")
    why = "filter applied inside the ANN traversal, search widened for its selectivity" if filtered \
        else "unfiltered"
    return plan(PlanKind.ANN, why, params)
