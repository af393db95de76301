"""Search mode: exploratory failure search around a seed spec (cross-entropy toward small TTC).

The search is :func:`simulator_harness.generation.perturb.cem_search`, with every batch evaluated through
:func:`simulator_harness.sweep.run_sweep`; the budget is split into ``iterations`` batches. The
report lists every sample, clusters the failures, and the failing specs come back so they can be
saved as new regression scenarios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator_harness.generation.perturb import SearchResult, cem_search, default_variations
from simulator_harness.modes.evaluate import Criteria, SweepOptions, policy, run_batches, scores
from simulator_harness.modes.report import Outcome, Report, build_report
from simulator_harness.scenario import ScenarioError, ScenarioSpec, resolve


@dataclass(frozen=True)
class SearchRun:
    """The report, the failing specs (renamed ``<seed>_fail_<k>``), and the raw search result."""

    report: Report
    failing_specs: tuple[ScenarioSpec, ...]
    result: SearchResult


class SweepEvaluator:
    """Scores batches for the search through the sweep, keeping every outcome for the report."""

    def __init__(self, policy_name: str, criteria: Criteria, options: SweepOptions) -> None:
        self.policy_name, self.criteria, self.options = policy_name, criteria, options
        self.outcomes: list[Outcome] = []

    def __call__(self, specs: list[ScenarioSpec]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = len(self.outcomes)
        names = [f"sample_{first + i}" for i in range(len(specs))]
        got = run_batches(specs, names, self.policy_name, self.criteria, self.options, description="search")
        self.outcomes += got
        return scores(got)


def search(seed_spec: ScenarioSpec, budget: int, seed: int = 0, iterations: int = 4, policy_name: str = "idm",
           criteria: Criteria | None = None, options: SweepOptions | None = None) -> SearchRun:
    """Spend ``budget`` simulations (rounded down to ``iterations`` equal batches, at least 4 each)."""
    crit = criteria or Criteria()
    if budget < 8 or iterations < 1:
        raise ScenarioError(f"search budget must be >= 8 simulations and iterations >= 1, got {budget}, "
                            f"{iterations}")
    variations = default_variations(seed_spec)
    batch = max(4, budget // iterations)
    evaluator = SweepEvaluator(policy_name, crit, options or SweepOptions())
    result = cem_search(seed_spec, policy(policy_name), np.random.default_rng(seed), iterations=min(iterations,
                        budget // batch), batch=batch, ttc_fail_s=crit.min_ttc_s, variations=variations,
                        evaluate=evaluator)
    outcomes = []
    failing = []
    for k, (outcome, (spec, _, _)) in enumerate(zip(evaluator.outcomes, result.samples, strict=True)):
        values = {v.key: round(float(resolve(spec, v.key)), 6) for v in variations}
        outcomes.append(Outcome(outcome.name, outcome.cell, outcome.event, outcome.metrics, outcome.failed,
                                outcome.plausible, outcome.gate_reasons, values))
        if outcome.counts_as_failure:
            failing.append(ScenarioSpec(**{**spec.__dict__, "name": f"{seed_spec.name}_fail_{k}",
                                           "variations": ()}))
    ttc = [o.metrics.get("min_ttc", math.inf) for o in outcomes if o.plausible]
    summary = {"seed_scenario": seed_spec.name, "policy": policy_name, "budget": budget,
               "simulated": len(outcomes), "iterations": len(result.means), "batch": batch,
               "min_ttc_found_s": min(ttc, default=math.inf),
               "varied": [v.key for v in variations],
               "final_proposal_mean": [round(float(m), 6) for m in result.means[-1]] if result.means else []}
    report = build_report("search", f"Failure search around {seed_spec.name}", seed, outcomes, summary)
    return SearchRun(report, tuple(failing), result)
