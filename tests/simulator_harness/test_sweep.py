"""Sweeps: results in input order, identical across back-ends for the same seeds, failures counted."""

from __future__ import annotations

import os
import sys
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from simulator_harness.errors import RayUnavailable, SweepError
from simulator_harness.stats.importance import Gaussian, cross_entropy, importance_sample
from simulator_harness.sweep import SeededItem, SweepResult, run_sweep, seeded_items
from tests.helpers import require_module

A = np.array([1.0, -0.5])
T = NormalDist().inv_cdf(1.0 - 1e-4) * float(np.linalg.norm(A))


def margin(x: np.ndarray) -> np.ndarray:
    return np.asarray(T - x @ A)


def rare_event_run(item: SeededItem) -> tuple[int, int, float]:
    """A real workload: one seeded cross-entropy + importance-sampling estimate."""
    if item.params.get("poison"):
        raise ValueError(f"item {item.index} is poisoned")
    rng = np.random.default_rng(item.seed)
    nominal = Gaussian(np.zeros(2), np.eye(2))
    ce = cross_entropy(margin, nominal, rng, n_per_level=300)
    est = importance_sample(margin, nominal, ce.proposal, 500, rng)
    return item.index, os.getpid(), est.p_fail


def ok(result: SweepResult[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    assert all(r is not None for r in result.results)
    return [r for r in result.results if r is not None]


def test_seeds_are_reproducible_and_distinct() -> None:
    a, b = seeded_items(7, 50), seeded_items(7, 50)
    assert [i.seed for i in a] == [i.seed for i in b]
    assert len({i.seed for i in a}) == 50
    assert [i.seed for i in seeded_items(8, 50)] != [i.seed for i in a]
    assert all(0 <= i.seed < 2**63 for i in a)
    with pytest.raises(SweepError):
        seeded_items(1, 3, params=[{}])


def test_process_pool_matches_inline_in_input_order() -> None:
    items = seeded_items(2024, 24)
    inline = run_sweep(rare_event_run, items, workers=0)
    pooled = run_sweep(rare_event_run, items, workers=2, chunk_size=5)
    assert inline.backend == "inline" and pooled.backend == "process"
    assert [r[0] for r in ok(pooled)] == list(range(24))
    assert [r[2] for r in ok(pooled)] == [r[2] for r in ok(inline)]
    assert {r[1] for r in ok(pooled)} - {os.getpid()}  # really ran in other processes
    estimates = np.array([r[2] for r in ok(pooled)])
    assert abs(float(np.mean(estimates)) / 1e-4 - 1.0) < 0.1
    assert len(set(estimates.tolist())) == 24  # different seeds, different samples


def test_failing_items_are_counted_and_the_sweep_goes_on() -> None:
    items = seeded_items(5, 10, params=[{"poison": i in (3, 7)} for i in range(10)])
    result = run_sweep(rare_event_run, items, workers=2, chunk_size=3, progress=True)
    assert [f.index for f in result.failures] == [3, 7]
    assert result.failures_by_type == {"ValueError": 2}
    assert "item 3 is poisoned" in result.failures[0].message
    assert result.results[3] is None and result.results[7] is None
    assert [r[0] for r in result.results if r is not None] == [0, 1, 2, 4, 5, 6, 8, 9]


def test_bad_arguments_raise_sweep_errors() -> None:
    with pytest.raises(SweepError):
        run_sweep(rare_event_run, seeded_items(1, 2), workers=-1)
    assert run_sweep(rare_event_run, [], workers=0).results == ()


def test_missing_ray_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if not installed
    with pytest.raises(RayUnavailable, match="not installed"):
        run_sweep(rare_event_run, seeded_items(1, 2), ray_address="ray://head:10001")


@pytest.mark.slow
def test_local_ray_gives_the_same_results_as_the_pool() -> None:
    ray: Any = require_module("ray", "ray is an optional extra (pip install avdata[ray]); it is pinned in requirements.lock")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    items = seeded_items(99, 12)
    pooled = run_sweep(rare_event_run, items, workers=2, chunk_size=4)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_sweep(rare_event_run, items, ray_address="local", chunk_size=4)
    finally:
        ray.shutdown()
    assert on_ray.backend == "ray"
    assert [r[0] for r in ok(on_ray)] == list(range(12))
    assert [r[2] for r in ok(on_ray)] == [r[2] for r in ok(pooled)]
