"""Importance sampling for rare failure probabilities: estimates, weight diagnostics, bounds.

Samples ``x_i`` come from a proposal ``q``; the nominal (real-world) density is ``p``. With log
densities ``log_p``/``log_q`` (shape ``(n,)``) and a failure indicator ``f_i`` (or a failure
margin, failing where ``margin <= 0``), the unbiased estimate is ``mean(w_i * f_i)`` with
``w_i = p(x_i) / q(x_i)``. Everything is computed from log-weights, scaled by their maximum, so
weights spanning hundreds of orders of magnitude neither overflow nor vanish. The upper bound is
empirical-Bernstein, a guarantee when the weights' range is known before sampling. At the bottom:
adaptive cross-entropy search of a Gaussian proposal for a Gaussian nominal, the defensive mixture
with the nominal that bounds every weight by ``1/α``, and the final importance-sampling run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simulator_harness.errors import ImportanceSamplingError
from simulator_harness.stats.psis import PARETO_K_UNRELIABLE, pareto_k

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def logsumexp(values: ArrayLike) -> float:
    """``log(sum(exp(values)))`` without overflow; ``-inf`` for an empty or all ``-inf`` input."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return -math.inf
    top = float(np.max(a))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.sum(np.exp(a - top))))


def log_weights(log_p: ArrayLike, log_q: ArrayLike) -> FloatArray:
    """Log importance weights ``log p - log q``, shape ``(n,)``.

    ``log_p`` may be ``-inf`` (a sample impossible under the nominal weighs zero); ``log_q`` must
    be finite, since the sample was drawn from ``q``. Raises :class:`ImportanceSamplingError`.
    """
    lp = np.asarray(log_p, dtype=np.float64)
    lq = np.asarray(log_q, dtype=np.float64)
    if lp.ndim != 1 or lp.shape != lq.shape:
        raise ImportanceSamplingError(f"log_p and log_q must be 1-D of equal length, got {lp.shape} and "
                                      f"{lq.shape}")
    if lp.size < 2:
        raise ImportanceSamplingError(f"need at least 2 samples, got {lp.size}")
    if not np.all(np.isfinite(lq)):
        raise ImportanceSamplingError("log_q has NaN or infinite entries: samples must come from q")
    if np.any(np.isnan(lp)) or np.any(lp == np.inf):
        raise ImportanceSamplingError("log_p has NaN or +inf entries")
    return lp - lq


def failure_mask(failed: ArrayLike, n: int) -> BoolArray:
    """Failure indicator of shape ``(n,)``: booleans as given, or numbers read as a margin that
    fails where ``<= 0`` (distance to the failure boundary, e.g. time-to-collision minus 1 s)."""
    a = np.asarray(failed)
    if a.shape != (n,):
        raise ImportanceSamplingError(f"failure array has shape {a.shape}, expected ({n},)")
    if a.dtype == np.bool_:
        return a
    if not np.issubdtype(a.dtype, np.number):
        raise ImportanceSamplingError(f"failure array must be bool or numeric margin, got {a.dtype}")
    margin = a.astype(np.float64)
    if np.any(np.isnan(margin)):
        raise ImportanceSamplingError("failure margin has NaN entries")
    return margin <= 0.0


@dataclass(frozen=True)
class WeightDiagnostics:
    """How far the weighted sample can be trusted.

    ``ess``: Kish effective sample size ``(Σw)²/Σw²`` of all weights (what the self-normalised
    estimate rests on). ``ess_failure``: the same over ``w·f``, the terms of the unbiased
    estimate. ``max_weight_share``: largest single share of ``Σ w·f`` (1.0: one sample is the
    whole estimate). ``cv``: coefficient of variation of ``w·f`` per sample. ``pareto_k``: PSIS
    shape of the upper tail of ``w·f`` (Vehtari et al. 2024): below 0.5 the variance is finite,
    above 0.7 the estimate is unreliable; NaN when fewer than 5 tail values or a flat tail.
    """

    ess: float
    ess_failure: float
    max_weight_share: float
    cv: float
    pareto_k: float


@dataclass(frozen=True)
class FailureEstimate:
    """A failure probability with its uncertainty. ``upper`` holds with ``confidence``.

    ``value_range`` is the range ``b`` of ``X = w·f`` (weight units) that the bound used;
    ``range_a_priori`` says whether it was known before sampling (then ``upper`` is a guarantee)
    or is the largest observed value (a plug-in that can undercover when the proposal missed part
    of the failure set). ``range_term`` is the bound's ``7·b·ln(2/δ)/(3(n-1))`` share of ``upper``
    (probability units): when it dominates, only more samples or a larger defensive share tighten
    the bound.
    """

    n: int
    n_failures: int
    p_fail: float
    p_fail_snis: float
    std_err: float
    rel_err: float
    upper: float
    confidence: float
    diagnostics: WeightDiagnostics
    value_range: float
    range_a_priori: bool
    range_term: float

    @property
    def reliable(self) -> bool:
        """False when the weight tail is heavy (Pareto k above 0.7) or no failure was seen."""
        return self.n_failures > 0 and not self.diagnostics.pareto_k > PARETO_K_UNRELIABLE


def _bernstein_log_term(confidence: float, n: int) -> float:
    if not 0.0 < confidence < 1.0:
        raise ImportanceSamplingError(f"confidence must be in (0, 1), got {confidence}")
    if n < 2:
        raise ImportanceSamplingError(f"need at least 2 samples, got {n}")
    return math.log(2.0 / (1.0 - confidence))


def empirical_bernstein_upper(mean: float, var: float, n: int, bound: float, confidence: float) -> float:
    """One-sided empirical-Bernstein upper bound on ``E[X]`` for i.i.d. ``X`` in ``[0, bound]``.

    Maurer & Pontil (2009, Thm 4): with probability at least ``confidence``,
    ``E[X] <= mean + sqrt(2·V·ln(2/δ)/n) + 7·bound·ln(2/δ)/(3(n-1))`` with ``V`` the unbiased
    sample variance and ``δ = 1 - confidence``. Unlike the Wald bound it needs no normality of
    the mean, and it always lies above the Wald bound at the same level since
    ``sqrt(2 ln(2/δ)) > z_{1-δ}`` for every ``δ < 0.5``. It holds only if ``bound`` is a true
    almost-sure bound on ``X``, fixed before sampling.
    """
    log_term = _bernstein_log_term(confidence, n)
    return mean + math.sqrt(2.0 * var * log_term / n) + 7.0 * bound * log_term / (3.0 * (n - 1))


def estimate_failure_probability(failed: ArrayLike, log_p: ArrayLike, log_q: ArrayLike,
                                 confidence: float = 0.95,
                                 value_bound: float | None = None) -> FailureEstimate:
    """Unbiased and self-normalised ``p_fail`` from weighted samples, with diagnostics and bound.

    ``upper`` is :func:`empirical_bernstein_upper` on ``X_i = w_i·f_i``, clipped to 1. The theorem
    needs an a-priori range ``[0, b]`` of ``X``: pass ``value_bound`` = ``sup p/q`` (``1/α`` for
    the defensive mixture ``α·p + (1-α)·q``, 1 for plain Monte Carlo) and the bound is a
    guarantee; a sample whose weight exceeds it raises, since then the densities are wrong.
    Without it the largest observed ``w·f`` stands in (with no failure, the largest weight), and
    ``range_a_priori`` is False: a proposal that missed a failure region never shows the weights
    that would have widened the range, and the plug-in then undercovers (see the tests' two-mode
    problem). Raises :class:`ImportanceSamplingError`.
    """
    lw = log_weights(log_p, log_q)
    n = lw.size
    fail = failure_mask(failed, n)
    log_term = _bernstein_log_term(confidence, n)
    if value_bound is not None and not (0.0 < value_bound < math.inf):
        raise ImportanceSamplingError(f"value_bound must be positive and finite, got {value_bound}")
    lw_fail = lw[fail]
    n_fail = int(lw_fail.size)
    top_fail = float(np.max(lw_fail)) if n_fail else -math.inf
    if value_bound is not None and top_fail > math.log(value_bound) + 1e-9:
        raise ImportanceSamplingError(f"a failure weight {math.exp(top_fail):.6g} exceeds value_bound "
                                      f"{value_bound:.6g}: log_p/log_q are not the densities the bound assumes")
    # Scale by the largest failure weight so that weights spanning hundreds of decades stay finite.
    scale = top_fail if math.isfinite(top_fail) else float(np.max(lw))
    scale = scale if math.isfinite(scale) else 0.0
    x = np.where(fail, np.exp(lw - scale), 0.0)
    mean_s = float(np.mean(x))
    var_s = float(np.var(x, ddof=1))
    factor = math.exp(scale) if scale < 700.0 else math.inf
    observed_range = (float(np.max(x)) if n_fail else 1.0) * factor
    value_range = observed_range if value_bound is None else value_bound
    range_term = 7.0 * value_range * log_term / (3.0 * (n - 1))
    p_fail = mean_s * factor if mean_s > 0.0 else 0.0
    std_err = math.sqrt(var_s / n) * factor if var_s > 0.0 else 0.0
    deviation = math.sqrt(2.0 * var_s * log_term / n) * factor if var_s > 0.0 else 0.0
    lse_fail = logsumexp(lw_fail)
    lse_all = logsumexp(lw)
    diagnostics = WeightDiagnostics(
        ess=_ess(lw, lse_all),
        ess_failure=_ess(lw_fail, lse_fail) if n_fail else 0.0,
        max_weight_share=math.exp(top_fail - lse_fail) if n_fail and math.isfinite(lse_fail) else 0.0,
        cv=math.sqrt(var_s) / mean_s if mean_s > 0.0 else math.inf,
        pareto_k=pareto_k(lw_fail, n),
    )
    return FailureEstimate(
        n=n, n_failures=n_fail, p_fail=p_fail,
        p_fail_snis=math.exp(lse_fail - lse_all) if n_fail and math.isfinite(lse_all) else 0.0,
        std_err=std_err, rel_err=std_err / p_fail if p_fail > 0.0 else math.inf,
        upper=min(1.0, p_fail + deviation + range_term), confidence=confidence, diagnostics=diagnostics,
        value_range=value_range, range_a_priori=value_bound is not None, range_term=range_term)


def _ess(lw: FloatArray, lse: float) -> float:
    """Kish effective sample size of weights given as logs; ``lse`` is ``logsumexp(lw)``."""
    if not math.isfinite(lse):
        return 0.0
    return math.exp(2.0 * lse - logsumexp(2.0 * lw))


def naive_mc_samples(p_fail: float, rel_err: float) -> float:
    """Samples plain Monte Carlo needs for relative error ``rel_err``: ``(1-p)/(p·re²)``."""
    if not 0.0 < p_fail < 1.0 or rel_err <= 0.0:
        raise ImportanceSamplingError(f"need 0 < p_fail < 1 and rel_err > 0, got {p_fail}, {rel_err}")
    return (1.0 - p_fail) / (p_fail * rel_err * rel_err)


#: A vectorised failure margin: parameters ``(n, d)`` to margins ``(n,)``, failing where ``<= 0``.
MarginFn = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True, eq=False)
class Gaussian:
    """Multivariate normal over scenario parameters: ``mean`` shape ``(d,)``, ``cov`` ``(d, d)``."""

    mean: FloatArray
    cov: FloatArray

    def __post_init__(self) -> None:
        d = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if d < 1 or self.cov.shape != (d, d):
            raise ImportanceSamplingError(f"Gaussian needs mean (d,) and cov (d, d), got {self.mean.shape} "
                                          f"and {self.cov.shape}")
        try:
            np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError as exc:
            raise ImportanceSamplingError("Gaussian covariance is not positive definite") from exc

    def log_pdf(self, x: FloatArray) -> FloatArray:
        """Log density at points ``x`` of shape ``(n, d)``; returns ``(n,)``."""
        chol = np.linalg.cholesky(self.cov)
        z = np.linalg.solve(chol, (x - self.mean).T)
        log_det = 2.0 * float(np.sum(np.log(np.diag(chol))))
        d = self.mean.shape[0]
        return np.asarray(-0.5 * (np.sum(z * z, axis=0) + log_det + d * math.log(2.0 * math.pi)))

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws, shape ``(n, d)``."""
        chol = np.linalg.cholesky(self.cov)
        return np.asarray(self.mean + rng.standard_normal((n, self.mean.shape[0])) @ chol.T)


@dataclass(frozen=True, eq=False)
class CrossEntropyResult:
    """Fitted proposal, the margin level reached at each stage (0.0 last when converged), and the
    number of margin evaluations spent, which a fair cost comparison must count."""

    proposal: Gaussian
    levels: tuple[float, ...]
    n_evaluated: int
    converged: bool


def _margins(margin_fn: MarginFn, x: FloatArray) -> FloatArray:
    margin = np.asarray(margin_fn(x), dtype=np.float64)
    if margin.shape != (x.shape[0],) or np.any(np.isnan(margin)):
        raise ImportanceSamplingError(f"margin function returned shape {margin.shape} or NaN; expected "
                                      f"({x.shape[0]},) finite margins")
    return margin


def _widen(cov: FloatArray, nominal: Gaussian, min_ratio: float) -> FloatArray:
    """Raise every eigenvalue of ``cov`` whitened by the nominal to at least ``min_ratio``."""
    chol = np.linalg.cholesky(nominal.cov)
    inv = np.linalg.inv(chol)
    white = inv @ cov @ inv.T
    lam, vec = np.linalg.eigh(0.5 * (white + white.T))
    return np.asarray(chol @ (vec * np.maximum(lam, min_ratio)) @ vec.T @ chol.T)


def cross_entropy(margin_fn: MarginFn, nominal: Gaussian, rng: np.random.Generator,
                  n_per_level: int = 1000, elite_fraction: float = 0.1, max_levels: int = 12,
                  min_variance_ratio: float = 0.6) -> CrossEntropyResult:
    """Multilevel cross-entropy fit of a Gaussian proposal towards ``margin <= 0``.

    Each level samples the current proposal, takes the ``elite_fraction`` quantile of the margin
    as the level ``γ`` (never below 0), and refits mean and covariance to the samples under it,
    weighted by ``p/q`` so the fit targets the nominal density restricted to ``margin <= γ``
    (Rubinstein & Kroese). The fitted covariance, whitened by the nominal's, has its eigenvalues
    raised to ``min_variance_ratio``: the weights' variance ``∫p²/q`` is finite only when
    ``Σq > Σp/2``, and an unconstrained fit to a half-space is narrower than that.
    """
    if not 0.0 < elite_fraction < 1.0 or n_per_level * elite_fraction < nominal.mean.shape[0] + 1:
        raise ImportanceSamplingError(f"elite_fraction {elite_fraction} of {n_per_level} samples leaves too "
                                      "few elites to fit a covariance")
    if min_variance_ratio <= 0.5:
        raise ImportanceSamplingError(f"min_variance_ratio must exceed 0.5 (finite weight variance), got "
                                      f"{min_variance_ratio}")
    proposal = nominal
    levels: list[float] = []
    for _ in range(max_levels):
        x = proposal.sample(rng, n_per_level)
        margin = _margins(margin_fn, x)
        gamma = max(float(np.quantile(margin, elite_fraction)), 0.0)
        elite = margin <= gamma
        lw = nominal.log_pdf(x[elite]) - proposal.log_pdf(x[elite])
        w = np.exp(lw - np.max(lw))
        w /= np.sum(w)
        mean = w @ x[elite]
        centred = x[elite] - mean
        cov = (centred * w[:, None]).T @ centred
        proposal = Gaussian(mean, _widen(cov, nominal, min_variance_ratio))
        levels.append(gamma)
        if gamma == 0.0:
            break
    return CrossEntropyResult(proposal, tuple(levels), n_per_level * len(levels), levels[-1] == 0.0)


#: Nominal share of the default defensive mixture. Every weight is then at most ``1/α = 10`` and the
#: estimate's second moment at most ``1/(1-α) ≈ 1.11`` times the fitted proposal's (at most about
#: 5 % more relative error); a larger share tightens the bound's ``O(1/(α·n))`` range term but
#: spends more samples where failures are rare.
DEFAULT_DEFENSIVE = 0.1


@dataclass(frozen=True, eq=False)
class DefensiveMixture:
    """Hesterberg's (1995) defensive mixture ``q = α·nominal + (1-α)·component``.

    As ``q >= α·p`` everywhere, every weight ``p/q`` is at most ``1/α`` (:attr:`weight_bound`)
    whatever the component, even where a component narrower than the nominal has vanishing
    tails. The price in variance is small and bounded both ways: ``E_q[w²f] <= E_c[w_c²f]/(1-α)``
    (at most ``1/(1-α)`` times the second moment of sampling the component alone) and
    ``E_q[w²f] <= P/α`` (at most ``1/α`` times plain Monte Carlo's). ``log_pdf`` is exact: the two
    log densities are mixed with ``logaddexp``, so nothing underflows far in the tails.
    """

    nominal: Gaussian
    component: Gaussian
    alpha: float = DEFAULT_DEFENSIVE

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ImportanceSamplingError(f"defensive share alpha must be in (0, 1), got {self.alpha}")
        if self.nominal.mean.shape != self.component.mean.shape:
            raise ImportanceSamplingError(f"mixture components differ in dimension: {self.nominal.mean.shape} "
                                          f"and {self.component.mean.shape}")

    @property
    def weight_bound(self) -> float:
        """``sup p/q = 1/α``, the a-priori range of every weight."""
        return 1.0 / self.alpha

    def log_pdf(self, x: FloatArray) -> FloatArray:
        """Log mixture density at points ``x`` of shape ``(n, d)``; returns ``(n,)``."""
        return np.asarray(np.logaddexp(math.log(self.alpha) + self.nominal.log_pdf(x),
                                       math.log1p(-self.alpha) + self.component.log_pdf(x)))

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws, shape ``(n, d)``: each from the nominal with probability ``α``."""
        from_nominal = rng.random(n) < self.alpha
        x = self.component.sample(rng, n)
        x[from_nominal] = self.nominal.sample(rng, int(np.count_nonzero(from_nominal)))
        return x


def importance_sample(margin_fn: MarginFn, nominal: Gaussian, proposal: Gaussian, n: int,
                      rng: np.random.Generator, confidence: float = 0.95,
                      defensive: float = DEFAULT_DEFENSIVE) -> FailureEstimate:
    """Draw ``n`` samples, evaluate the margin, estimate ``p_fail`` under ``nominal``.

    The samples come from :class:`DefensiveMixture` ``(nominal, proposal, defensive)`` and the
    bound takes the a-priori range ``1/defensive``, so ``upper`` is a guarantee. ``defensive=0``
    samples ``proposal`` alone; the range is then the observed maximum, not a guarantee.
    """
    if defensive == 0.0:
        x = proposal.sample(rng, n)
        return estimate_failure_probability(_margins(margin_fn, x), nominal.log_pdf(x), proposal.log_pdf(x),
                                            confidence=confidence)
    mixture = DefensiveMixture(nominal, proposal, defensive)
    x = mixture.sample(rng, n)
    return estimate_failure_probability(_margins(margin_fn, x), nominal.log_pdf(x), mixture.log_pdf(x),
                                        confidence=confidence, value_bound=mixture.weight_bound)
