"""Importance sampling against a problem with a known answer: X ~ N(0, I_4), fail when a·x > t.

The runs fit a cross-entropy proposal (500 samples a level, 4 levels) and estimate from 2000 draws
of the defensive mixture ``0.1·nominal + 0.9·proposal``, so the empirical-Bernstein bound takes the
a-priori range 1/0.1 = 10 and is a guarantee. At p = 1e-5 and n = 2000 that range term,
``7·10·ln(40)/(3·1999) = 0.043``, is about 4,300 times the truth: the bound covers because it must,
not because it is tight (``test_missed_mode.py`` shows where it is informative and why it must be
this wide).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pytest

from simulator_harness.errors import ImportanceSamplingError, SimulatorError
from simulator_harness.stats.importance import (
    DEFAULT_DEFENSIVE,
    CrossEntropyResult,
    DefensiveMixture,
    FailureEstimate,
    Gaussian,
    cross_entropy,
    empirical_bernstein_upper,
    estimate_failure_probability,
    importance_sample,
    logsumexp,
    naive_mc_samples,
)
from simulator_harness.stats.psis import pareto_k

A = np.array([1.0, 0.5, -0.5, 0.25])
T = NormalDist().inv_cdf(1.0 - 1e-5) * float(np.linalg.norm(A))
P_TRUE = NormalDist().cdf(-T / float(np.linalg.norm(A)))
NOMINAL = Gaussian(np.zeros(4), np.eye(4))
N_FINAL = 2000
Runs = list[tuple[int, CrossEntropyResult, FailureEstimate]]


def margin(x: np.ndarray) -> np.ndarray:
    return np.asarray(T - x @ A)


@pytest.fixture(scope="module")
def runs() -> Runs:
    out: Runs = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        ce = cross_entropy(margin, NOMINAL, rng, n_per_level=500)
        out.append((ce.n_evaluated + N_FINAL, ce, importance_sample(margin, NOMINAL, ce.proposal, N_FINAL, rng)))
    return out


def test_truth_is_about_1e_minus_5() -> None:
    assert abs(P_TRUE - 1e-5) < 1e-11


def test_upper_bound_covers_truth_in_at_least_93_of_100_runs_and_beats_wald(runs: Runs) -> None:
    z = NormalDist().inv_cdf(0.95)
    covered = sum(est.upper >= P_TRUE for _, _, est in runs)
    wald = sum(est.p_fail + z * est.std_err >= P_TRUE for _, _, est in runs)
    assert covered >= 93
    assert covered >= wald  # the Wald bound is the one that undercovers with skewed weights
    assert all(est.upper >= est.p_fail + z * est.std_err for _, _, est in runs)


def test_the_bound_takes_the_a_priori_range_of_the_defensive_mixture(runs: Runs) -> None:
    log_term = math.log(1.0 / 0.025)
    for _, _, est in runs:
        assert est.range_a_priori and est.value_range == 1.0 / DEFAULT_DEFENSIVE == pytest.approx(10.0)
        assert est.range_term == pytest.approx(7.0 * 10.0 * log_term / (3.0 * (N_FINAL - 1)))
        assert est.upper == pytest.approx(est.p_fail + math.sqrt(2.0 * log_term) * est.std_err + est.range_term)
    # The range term dominates at this rarity and sample size (see the module docstring).
    assert all(est.range_term > 0.99 * est.upper for _, _, est in runs)
    rng = np.random.default_rng(0)
    alone = importance_sample(margin, NOMINAL, runs[0][1].proposal, N_FINAL, rng, defensive=0.0)
    assert not alone.range_a_priori and alone.upper < 0.01 * runs[0][2].upper  # tight, and no guarantee


def test_speed_up_at_equal_relative_error_is_4000_against_4_3e7_samples(runs: Runs) -> None:
    """Samples for the relative error the runs achieve: importance sampling counts every margin
    evaluation (cross-entropy levels and the 2000 final draws, measured); plain Monte Carlo needs
    ``(1-p)/(p·re²)`` for the same relative error. The achieved error is the spread of 100
    estimates, whose own sampling error is about 7 % (1σ), i.e. 14 % on ``1/re²``: the
    tolerance of ±40 % is about 3σ and still fails if the proposal loses a factor 2 in variance."""
    costs = sorted(cost for cost, _, _ in runs)
    p = np.array([est.p_fail for _, _, est in runs])
    achieved_re = float(np.std(p, ddof=1)) / P_TRUE
    n_naive = naive_mc_samples(P_TRUE, achieved_re)
    assert 3500 <= costs[len(costs) // 2] <= 4500 and costs[-1] <= 4500
    assert 0.6 * 4.3e7 <= n_naive <= 1.4 * 4.3e7
    assert n_naive / costs[-1] > 5000


def test_proposal_weights_are_unbounded_on_the_failure_set_and_the_mixture_caps_them() -> None:
    """The fitted covariance, whitened, has eigenvalues down to 0.6 < 1: along that direction
    ``p/q`` grows without bound inside the failure set; the mixture's stays below ``1/α``."""
    ce = cross_entropy(margin, NOMINAL, np.random.default_rng(0), n_per_level=500)
    mix = DefensiveMixture(NOMINAL, ce.proposal, 0.1)
    lam, vec = np.linalg.eigh(ce.proposal.cov)
    assert lam[0] < 1.0
    direction = vec[:, 0] * np.sign(vec[:, 0] @ A)
    x = ce.proposal.mean + np.array([5.0, 10.0, 20.0, 40.0])[:, None] * direction
    assert np.all(margin(x) < 0.0)
    w_ce = np.exp(NOMINAL.log_pdf(x) - ce.proposal.log_pdf(x))
    w_mix = np.exp(NOMINAL.log_pdf(x) - mix.log_pdf(x))
    assert w_ce[-1] > 1e100 and np.all(np.diff(w_ce) > 0)
    assert np.all(w_mix <= mix.weight_bound) and w_mix[-1] == pytest.approx(10.0)


def test_mixture_density_is_exact_and_finite_far_in_the_tails() -> None:
    component = Gaussian(np.array([3.0, -1.0]), np.diag([0.5, 0.7]))
    nominal = Gaussian(np.zeros(2), np.eye(2))
    mix = DefensiveMixture(nominal, component, 0.25)
    x = np.array([[0.0, 0.0], [3.0, -1.0], [1.5, 0.5]])
    direct = np.log(0.25 * np.exp(nominal.log_pdf(x)) + 0.75 * np.exp(component.log_pdf(x)))
    np.testing.assert_allclose(mix.log_pdf(x), direct, rtol=1e-12)
    far = np.array([[60.0, 0.0]])  # both densities underflow in linear space
    assert np.exp(nominal.log_pdf(far)[0]) == 0.0 and np.isfinite(mix.log_pdf(far)[0])
    # The narrower component vanishes 1e-600 times faster there: the nominal's tail carries the mixture.
    assert mix.log_pdf(far)[0] == pytest.approx(math.log(0.25) + nominal.log_pdf(far)[0], rel=1e-12)
    draws = mix.sample(np.random.default_rng(1), 200_000)
    np.testing.assert_allclose(draws.mean(axis=0), 0.25 * nominal.mean + 0.75 * component.mean, atol=0.01)
    spread = 0.25 * nominal.cov + 0.75 * component.cov + 0.25 * 0.75 * np.outer(component.mean, component.mean)
    np.testing.assert_allclose(np.cov(draws.T), spread, atol=0.03)


def test_a_weight_above_the_stated_range_is_refused() -> None:
    log_p = np.array([0.0, math.log(11.0), 0.0])
    with pytest.raises(ImportanceSamplingError, match="exceeds value_bound"):
        estimate_failure_probability(np.array([False, True, True]), log_p, np.zeros(3), value_bound=10.0)
    ok = estimate_failure_probability(np.array([True, False, False]), log_p, np.zeros(3), value_bound=10.0)
    assert ok.range_a_priori and ok.value_range == 10.0  # a large weight outside the failure set is no X


def test_without_a_stated_range_the_observed_one_is_used_and_flagged() -> None:
    rng = np.random.default_rng(4)
    lw = rng.normal(-3.0, 1.0, 500)
    failed = rng.random(500) < 0.3
    est = estimate_failure_probability(failed, lw, np.zeros(500))
    assert not est.range_a_priori and est.value_range == pytest.approx(float(np.max(np.exp(lw[failed]))))


def test_estimates_are_unbiased_and_the_reported_error_is_honest(runs: Runs) -> None:
    p = np.array([est.p_fail for _, _, est in runs])
    spread = float(np.std(p, ddof=1))
    assert abs(float(np.mean(p)) - P_TRUE) < 4.0 * spread / math.sqrt(len(p))
    reported = float(np.median([est.rel_err for _, _, est in runs]))
    assert 0.5 < reported / (spread / P_TRUE) < 2.0


def test_is_needs_100x_fewer_samples_than_naive_monte_carlo(runs: Runs) -> None:
    p = np.array([est.p_fail for _, _, est in runs])
    achieved_re = float(np.std(p, ddof=1)) / P_TRUE
    n_is = max(cost for cost, _, _ in runs)  # cross-entropy levels included
    assert naive_mc_samples(P_TRUE, achieved_re) >= 100 * n_is


def test_cross_entropy_levels_descend_to_the_failure_set(runs: Runs) -> None:
    for _, ce, est in runs:
        assert ce.converged and ce.levels[-1] == 0.0
        assert all(a > b for a, b in zip(ce.levels, ce.levels[1:], strict=False))
        assert est.n_failures > N_FINAL // 4
        assert est.reliable
    assert float(np.median([est.diagnostics.pareto_k for _, _, est in runs])) < 0.5


def test_heavy_tailed_weights_are_flagged_by_pareto_k() -> None:
    # A proposal narrower than half the nominal variance: the weights have infinite variance.
    narrow = Gaussian(np.zeros(1), np.eye(1) * 0.04)
    nominal = Gaussian(np.zeros(1), np.eye(1))
    ks, reliable = [], []
    for seed in range(9):
        x = narrow.sample(np.random.default_rng(seed), 4000)
        est = estimate_failure_probability(np.ones(4000, bool), nominal.log_pdf(x), narrow.log_pdf(x))
        ks.append(est.diagnostics.pareto_k)
        reliable.append(est.reliable)
    assert float(np.median(ks)) > 0.7
    assert reliable.count(False) >= 5


def test_pareto_k_recovers_known_tail_indices() -> None:
    rng = np.random.default_rng(3)
    for alpha in (1.0, 2.0, 4.0):
        k = pareto_k(np.log(rng.pareto(alpha, 8000) + 1.0))
        assert k == pytest.approx(1.0 / alpha, abs=0.2)
    assert pareto_k(np.log(rng.uniform(size=8000))) < 0.0
    assert math.isnan(pareto_k(np.zeros(3)))


def test_equal_weights_reduce_to_plain_monte_carlo() -> None:
    failed = np.zeros(1000, bool)
    failed[:37] = True
    est = estimate_failure_probability(failed, np.zeros(1000), np.zeros(1000))
    assert est.p_fail == pytest.approx(0.037)
    assert est.p_fail_snis == pytest.approx(0.037)
    assert est.std_err == pytest.approx(math.sqrt(37 * 963 / (1000 * 999) / 1000))
    assert est.diagnostics.ess == pytest.approx(1000.0)
    assert est.diagnostics.ess_failure == pytest.approx(37.0)
    assert est.diagnostics.max_weight_share == pytest.approx(1 / 37)


def test_margin_and_indicator_give_the_same_estimate() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=500)
    lp, lq = rng.normal(size=500), rng.normal(size=500)
    assert estimate_failure_probability(m, lp, lq) == estimate_failure_probability(m <= 0, lp, lq)


def test_huge_log_weights_do_not_overflow() -> None:
    lw = 1000.0 + np.linspace(0.0, 1.0, 10)
    failed = np.arange(10) < 5
    est = estimate_failure_probability(failed, lw, np.zeros(10))
    expected = np.sum(np.exp(lw[:5] - 1001.0)) / np.sum(np.exp(lw - 1001.0))
    assert est.p_fail_snis == pytest.approx(expected)
    assert logsumexp([1000.0, 1000.0]) == pytest.approx(1000.0 + math.log(2.0))
    assert est.diagnostics.ess == pytest.approx(np.sum(np.exp(lw - 1001)) ** 2 / np.sum(np.exp(2 * (lw - 1001))))


def test_zero_failures_still_give_a_conservative_bound() -> None:
    n = 5000
    est = estimate_failure_probability(np.ones(n), np.zeros(n), np.zeros(n))
    assert est.p_fail == 0.0 and est.n_failures == 0 and not est.reliable
    assert est.upper == pytest.approx(7.0 * math.log(40.0) / (3.0 * (n - 1)))
    assert est.upper > 3.0 / n  # the exact binomial 95 % bound with no failure


def test_known_value_bound_is_used() -> None:
    failed = np.ones(100, bool)
    loose = estimate_failure_probability(failed, np.zeros(100), np.zeros(100), value_bound=50.0)
    assert loose.upper == pytest.approx(min(1.0, 1.0 + 7.0 * 50.0 * math.log(40.0) / (3.0 * 99)))
    assert empirical_bernstein_upper(0.1, 0.0, 101, 1.0, 0.95) == pytest.approx(0.1 + 7 * math.log(40) / 300)


def test_gaussian_log_pdf_matches_closed_form() -> None:
    g = Gaussian(np.array([1.0, -1.0]), np.diag([4.0, 0.25]))
    x = np.array([[1.0, -1.0], [3.0, 0.0]])
    expected = -np.log(2 * np.pi * 2.0 * 0.5) - 0.5 * np.array([0.0, 1.0 + 4.0])
    np.testing.assert_allclose(g.log_pdf(x), expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: estimate_failure_probability(np.ones(3, bool), np.zeros(3), np.zeros(4)), "equal length"),
        (lambda: estimate_failure_probability(np.ones(3, bool), np.zeros(3), [0, np.nan, 0]), "log_q"),
        (lambda: estimate_failure_probability([1.0, np.nan], np.zeros(2), np.zeros(2)), "NaN"),
        (lambda: estimate_failure_probability(np.ones(2, bool), np.zeros(2), np.zeros(2), 1.5), "confidence"),
        (lambda: estimate_failure_probability(np.ones(1, bool), np.zeros(1), np.zeros(1)), "at least 2"),
        (lambda: estimate_failure_probability(["a", "b"], np.zeros(2), np.zeros(2)), "bool or numeric"),
        (lambda: Gaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])), "positive definite"),
        (lambda: cross_entropy(margin, NOMINAL, np.random.default_rng(0), min_variance_ratio=0.3), "0.5"),
        (lambda: cross_entropy(lambda x: np.full(3, 1.0), NOMINAL, np.random.default_rng(0)), "shape"),
        (lambda: naive_mc_samples(0.0, 0.1), "p_fail"),
        (lambda: estimate_failure_probability(np.ones(2, bool), np.zeros(2), np.zeros(2), value_bound=0.0),
         "value_bound"),
        (lambda: DefensiveMixture(NOMINAL, NOMINAL, 1.0), "alpha"),
        (lambda: DefensiveMixture(NOMINAL, Gaussian(np.zeros(2), np.eye(2))), "dimension"),
    ],
)
def test_bad_input_raises_a_typed_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ImportanceSamplingError, match=message) as info:
        call()
    assert isinstance(info.value, SimulatorError) and info.value.reason == "bad_importance_input"
