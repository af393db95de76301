"""Scenario generation from seeds: timing, count and intensity perturbations, and the
cross-entropy search toward failures.
"""

from simulator_harness.generation.perturb import (
    Evaluator,
    Failure,
    Proposal,
    SearchResult,
    cem_search,
    default_variations,
    evaluate_inline,
    log_nominal,
    perturb_count,
    perturb_intensity,
    perturb_timing,
    perturb_variations,
)

__all__ = [
    "Evaluator",
    "Failure",
    "Proposal",
    "SearchResult",
    "cem_search",
    "default_variations",
    "evaluate_inline",
    "log_nominal",
    "perturb_count",
    "perturb_intensity",
    "perturb_timing",
    "perturb_variations",
]
