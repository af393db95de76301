"""The planner's rules: empty, exact when untrained or selective (candidates × dim), ANN otherwise,
and exact again when the widened ANN search would visit the whole index."""

from __future__ import annotations

from downstream.mining.index.planner import PlannerSettings, choose
from downstream.mining.index.records import PlanKind

S = PlannerSettings(exact_max_work=2_048_000)


def plan(n_cand: int, *, ready: bool = True, params=lambda n, k: (("nprobe", 32),), dim: int = 512):
    return choose(backend="t", n_rows=1_000_000, n_candidates=n_cand, filtered=n_cand < 1_000_000, dim=dim, k=10,
                  ann_ready=ready, ann_params=params, settings=S)


def test_no_candidate_is_empty() -> None:
    assert plan(0).kind is PlanKind.EMPTY


def test_untrained_index_is_exact() -> None:
    assert plan(1_000_000, ready=False).kind is PlanKind.EXACT


def test_selective_filter_is_exact_at_the_work_threshold() -> None:
    at = plan(4000)  # 4000 × 512 = 2,048,000
    assert at.kind is PlanKind.EXACT and "2048000 <= 2048000" in at.reason
    over = plan(4001)
    assert over.kind is PlanKind.ANN and over.params == (("nprobe", 32),)
    assert plan(32_000, dim=64).kind is PlanKind.EXACT  # the rule counts work, not rows


def test_exact_when_the_ann_search_would_visit_everything() -> None:
    p = plan(50_000, params=lambda n, k: None)
    assert p.kind is PlanKind.EXACT and "whole index" in p.reason


def test_explain_names_plan_candidates_and_parameters() -> None:
    line = plan(10_000).explain()
    assert line.startswith("t: ann [nprobe=32]") and "10000/1000000 rows (1.0000%)" in line
    assert plan(1_000_000).explain().startswith("t: ann [nprobe=32]; 1000000 rows, no filter")
