"""Risk mode: an importance-sampled failure probability of one scenario, with its diagnostics.

A short cross-entropy search (:mod:`simulator_harness.modes.search`) fits a proposal over the
scenario's variations toward failure; the estimate then draws ``samples`` specs from the defensive
mixture ``α·nominal + (1-α)·proposal`` (the nominal share keeps every weight below ``1/α``),
simulates them through the sweep, and weighs each by ``p/q`` (an implausible sample weighs zero).
The empirical-Bernstein upper bound takes that a-priori range ``1/α``, so it is a guarantee at its
confidence whatever the search found; its range term ``7·ln(2/δ)/(3·α·(n-1))`` (0.168 for 512
samples at α = 0.1, 95 %) is the price, reported beside it. The same number of plain Monte Carlo
draws from the nominal runs beside it, for the comparison (range 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator_harness.generation.perturb import Proposal, cem_search, default_variations, log_nominal
from simulator_harness.modes.evaluate import Criteria, SweepOptions, policy, run_batches
from simulator_harness.modes.regress import sample_nominal
from simulator_harness.modes.report import Outcome, Report, build_report
from simulator_harness.modes.search import SweepEvaluator
from simulator_harness.scenario import ScenarioError, ScenarioSpec, apply
from simulator_harness.stats.importance import FailureEstimate, estimate_failure_probability, naive_mc_samples


def _estimate_fields(est: FailureEstimate) -> dict[str, Any]:
    d = est.diagnostics
    return {"n": est.n, "failures": est.n_failures, "p_fail": est.p_fail, "p_fail_snis": est.p_fail_snis,
            "std_err": est.std_err, "rel_err": est.rel_err, "upper": est.upper, "confidence": est.confidence,
            "value_range": est.value_range, "range_a_priori": est.range_a_priori, "range_term": est.range_term,
            "ess": d.ess, "ess_failure": d.ess_failure, "max_weight_share": d.max_weight_share,
            "pareto_k": d.pareto_k, "reliable": est.reliable}


def risk(spec: ScenarioSpec, samples: int, seed: int = 0, naive_samples: int | None = None,
         cem_iterations: int = 3, cem_batch: int = 32, defensive: float = 0.1, policy_name: str = "idm",
         criteria: Criteria | None = None, options: SweepOptions | None = None) -> Report:
    """Estimate ``P(fail)`` of ``policy_name`` on ``spec`` over its variations (see the module docstring)."""
    if samples < 2 or not 0.0 < defensive < 1.0:
        raise ScenarioError(f"risk needs samples >= 2 and 0 < defensive < 1, got {samples}, {defensive}")
    crit = criteria or Criteria()
    opts = options or SweepOptions()
    vs = default_variations(spec)
    if not vs:
        raise ScenarioError(f"{spec.name}: nothing to vary (no variations and no events)")
    rng = np.random.default_rng(seed)
    fit = cem_search(spec, policy(policy_name), rng, iterations=cem_iterations, batch=cem_batch,
                     ttc_fail_s=crit.min_ttc_s, variations=vs, evaluate=SweepEvaluator(policy_name, crit, opts))
    q = fit.proposal or Proposal.nominal(vs)
    from_nominal = rng.random(samples) < defensive
    x = np.where(from_nominal[:, None], sample_nominal(vs, samples, rng), q.sample(samples, rng))
    log_p = log_nominal(vs, x)
    log_q = np.logaddexp(math.log(defensive) + log_p, math.log1p(-defensive) + q.log_density(x))
    is_out = _run(spec, vs, x, "is", policy_name, crit, opts)
    failed = np.array([o.counts_as_failure for o in is_out])
    plausible = np.array([o.plausible for o in is_out])
    # q >= defensive * p everywhere, so no weight exceeds 1/defensive: the bound's range, known a priori.
    est = estimate_failure_probability(failed, np.where(plausible, log_p, -np.inf), log_q,
                                       value_bound=1.0 / defensive)

    n_naive = samples if naive_samples is None else naive_samples
    naive_out = _run(spec, vs, sample_nominal(vs, n_naive, rng), "mc", policy_name, crit, opts) if n_naive else []
    summary: dict[str, Any] = {"scenario": spec.name, "policy": policy_name, "varied": [v.key for v in vs],
                               "cem_simulations": len(fit.samples), "defensive_share": defensive}
    summary.update({f"is_{k}": v for k, v in _estimate_fields(est).items()})
    if n_naive >= 2:
        k_fail = sum(o.counts_as_failure for o in naive_out)
        naive = estimate_failure_probability(np.array([o.counts_as_failure for o in naive_out]),
                                             np.zeros(n_naive), np.zeros(n_naive), value_bound=1.0)
        summary.update({"mc_n": n_naive, "mc_failures": k_fail, "mc_p_fail": naive.p_fail, "mc_upper": naive.upper})
    if 0.0 < est.p_fail < 1.0 and math.isfinite(est.rel_err) and est.rel_err > 0:
        summary["mc_samples_for_same_rel_err"] = naive_mc_samples(est.p_fail, est.rel_err)
    notes: tuple[str, ...] = ()
    if not est.reliable:
        notes += ("the importance-sampling estimate is not reliable (no failure seen, or Pareto k above 0.7): "
                  "raise --samples or check the proposal",)
    if est.range_term > 0.5 * est.upper:
        notes += (f"the upper bound is mostly its range term {est.range_term:.3g} (weights up to 1/α = "
                  f"{est.value_range:.3g}): it shrinks as 1/(α·samples); raise --samples or --defensive",)
    return build_report("risk", f"Failure probability of {spec.name}", seed, [*is_out, *naive_out], summary, notes)


def _run(spec: ScenarioSpec, vs: tuple[Any, ...], x: np.ndarray, prefix: str, policy_name: str, crit: Criteria,
         opts: SweepOptions) -> list[Outcome]:
    values = [{v.key: float(row[d]) for d, v in enumerate(vs)} for row in x]
    specs = [apply(spec, val) for val in values]
    names = [f"{prefix}_{i}" for i in range(len(specs))]
    return run_batches(specs, names, policy_name, crit, opts, values, description=f"risk:{prefix}")
