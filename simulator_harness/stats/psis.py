"""Pareto-smoothed importance sampling diagnostic: the tail shape ``k̂`` of the largest weights.

Vehtari, Simpson, Gelman, Yao & Gabry (2024, "Pareto smoothed importance sampling", JMLR 25):
fit a generalised Pareto distribution to the ``M = ceil(min(0.2·S, 3·sqrt(S)))`` largest weights
minus the ``(M+1)``-th largest, with the empirical-Bayes estimate of Zhang & Stephens (2009) and
Vehtari et al.'s weakly informative prior on the shape. ``k̂ < 0.5``: the weights' variance is
finite; ``k̂ > 0.7``: the importance-sampling estimate is unreliable. The steps follow ``psis`` and
``gpdfit`` of the R package ``loo`` with ``r_eff = 1`` (i.i.d. draws), in NumPy only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: PSIS threshold above which the weight tail is too heavy for the estimate to be trusted.
PARETO_K_UNRELIABLE = 0.7


def pareto_k(log_values: ArrayLike, n_total: int | None = None) -> float:
    """PSIS tail shape ``k̂`` of positive values given as logs.

    The tail is the largest ``ceil(min(0.2·n, 3·sqrt(n)))`` values, ``n = n_total`` (all samples,
    counting zeros, e.g. the weights times a failure indicator) or the number of values. Returns
    NaN with fewer than 5 tail values or a flat tail.
    """
    lv = np.asarray(log_values, dtype=np.float64)
    lv = lv[np.isfinite(lv)]
    n = lv.size if n_total is None else n_total
    tail_len = min(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n))), lv.size)
    if tail_len < 5:
        return math.nan
    if lv.size > tail_len + 1:  # only the tail and its cutoff need ordering
        lv = np.partition(lv, lv.size - tail_len - 1)[lv.size - tail_len - 1:]
    lv = np.sort(lv)
    lv = lv - lv[-1]
    tail = np.exp(lv[-tail_len:])
    cutoff = math.exp(lv[-tail_len - 1]) if lv.size > tail_len else 0.0
    exceed = tail - cutoff
    if exceed[-1] - exceed[0] <= 1e-12 * max(exceed[-1], 1e-300):
        return math.nan
    return gpd_fit_k(exceed)


def gpd_fit_k(x: NDArray[np.float64]) -> float:
    """Shape ``k`` of a generalised Pareto fit to sorted non-negative exceedances ``x`` ``(m,)``.

    Zhang & Stephens' profile-likelihood grid over ``θ = -k/σ`` (``30 + sqrt(m)`` points, prior
    3 on the first quartile), the posterior-mean ``θ̂``, then ``k̂ = mean(log1p(-θ̂·x))`` shrunk
    towards 0.5 with weight 10 as Vehtari et al. do (``k > 0``: a heavy tail).
    """
    n = x.size
    m = 30 + int(math.sqrt(n))
    grid = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    theta = 1.0 / x[-1] + grid / (3.0 * x[int(n / 4 + 0.5) - 1])
    k = np.mean(np.log1p(-theta[:, None] * x[None, :]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        profile = n * (np.log(-theta / k) - k - 1.0)
    profile = np.where(np.isfinite(profile), profile, -np.inf)
    post = np.exp(profile - np.max(profile))
    theta_hat = float(np.sum(theta * post) / np.sum(post))
    k_hat = float(np.mean(np.log1p(-theta_hat * x)))
    return (n * k_hat + 10.0 * 0.5) / (n + 10.0)
