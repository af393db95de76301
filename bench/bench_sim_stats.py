"""Validation statistics throughput: the importance-sampling estimator and the scenario sweep.

Two figures, each beside its limit measured in the same run:

* ``is_estimator``: samples/s of :func:`estimate_failure_probability` (log-weights, failure mask,
  unbiased and self-normalised estimates, ESS, Pareto k, empirical-Bernstein bound) against a bare
  NumPy weighted mean ``mean(exp(log_p - log_q) * f)`` over the same arrays, the least any estimate
  must do.
* ``sweep``: closed-loop scenarios/s through :func:`run_sweep` (chunking, ordered results, failure
  capture, progress bookkeeping) against a bare ``ProcessPoolExecutor.map`` of the same work
  function over the same jobs with the same number of processes.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.common import Figure, main_for
from simulator_harness.modes.evaluate import Criteria, evaluate, make_jobs
from simulator_harness.scenario import load
from simulator_harness.scenario.variation import apply
from simulator_harness.stats.importance import estimate_failure_probability
from simulator_harness.sweep import run_sweep

SUITE = Path(__file__).resolve().parents[1] / "simulator_harness" / "suites" / "regression"


def _best(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def _estimator(n: int, repeat: int) -> Figure:
    rng = np.random.default_rng(0)
    log_q = rng.normal(0.0, 1.0, n)
    log_p = log_q + rng.normal(-2.0, 1.5, n)
    failed = rng.random(n) < 1e-3
    ours = _best(lambda: estimate_failure_probability(failed, log_p, log_q), repeat)
    bare = _best(lambda: float(np.mean(np.exp(log_p - log_q) * failed)), repeat)
    return Figure("is_estimator", n / ours, "samples/s", n / bare, "bare NumPy weighted mean",
                  note=f"n={n}, with ESS, Pareto k and the empirical-Bernstein bound")


def _jobs(n_specs: int, batch: int) -> list[object]:
    seed = load(SUITE / "lead_brake_highway.toml")
    rng = np.random.default_rng(1)
    specs = [apply(seed, {"events[0].params.decel_mps2": float(d)}) for d in rng.uniform(4.0, 8.0, n_specs)]
    return [job for _, job in make_jobs(specs, [f"s{i}" for i in range(n_specs)], "idm", Criteria(), batch)]


def _sweep(n_specs: int, batch: int, workers: int, repeat: int) -> Figure:
    jobs = _jobs(n_specs, batch)
    ctx = multiprocessing.get_context("spawn")

    def ours() -> None:
        result = run_sweep(evaluate, jobs, workers=workers, chunk_size=1)  # type: ignore[arg-type]
        assert not result.failures, result.failures

    def bare() -> None:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            assert len(list(pool.map(evaluate, jobs))) == len(jobs)

    best_ours = best_bare = float("inf")
    for _ in range(repeat):  # alternate, so neither side always runs on a warmer machine
        best_ours = min(best_ours, _best(ours, 1))
        best_bare = min(best_bare, _best(bare, 1))
    return Figure("sweep_closed_loop", n_specs / best_ours, "scenarios/s", n_specs / best_bare,
                  "bare ProcessPoolExecutor.map", note=f"{n_specs} scenarios of 8 s, batches of {batch}, "
                                                      f"{workers} processes (spawn), pool start-up included")


def run(quick: bool = False) -> list[Figure]:
    """The two figures; ``quick`` shrinks both to a few seconds."""
    workers = min(2, os.cpu_count() or 1)
    return [_estimator(100_000 if quick else 2_000_000, 3 if quick else 5),
            _sweep(32 if quick else 512, 16, workers, 1 if quick else 3)]


if __name__ == "__main__":
    main_for(run)
