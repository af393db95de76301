"""A Gaussian with a shrunk covariance, and the Mahalanobis distance to it: the core of both the
out-of-distribution reference (:mod:`vehicle.inference.reference`) and the drift monitor
(:mod:`vehicle.inference.drift`). Pure NumPy, no I/O.

With ``n`` samples of dimension ``d`` (here often ``n < d = 512``) the sample covariance ``S`` is
singular, so it is shrunk towards a scaled identity: ``Σ = (1 − α) S + α (tr S / d) I``, which is
invertible for any ``α > 0``. The weight ``α`` in [0, 1] is estimated from the data, by one of:

- ``"lw"``, Ledoit & Wolf (2004), "A well-conditioned estimator for large-dimensional covariance
  matrices": no distributional assumption;
- ``"oas"``, Chen, Wiesel, Eldar & Hero (2010), "Shrinkage algorithms for MMSE covariance
  estimation": assumes Gaussian samples and shrinks less noisily than LW when ``n`` is small.

The distance is reported per dimension, ``sqrt((x − μ)ᵀ Σ⁻¹ (x − μ) / d)`` (dimensionless): about
1 for a sample drawn from a well-estimated reference, growing with how far outside it ``x`` lies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def ledoit_wolf_shrinkage(centred: np.ndarray, cov: np.ndarray) -> float:
    """Ledoit-Wolf (2004) weight towards ``(tr S / d) I`` for centred samples ``(n, d)``."""
    n, d = centred.shape
    mu = float(np.trace(cov)) / d
    delta = float(np.sum((cov - mu * np.eye(d)) ** 2)) / d
    if delta <= 0.0:
        return 1.0
    sq = centred**2
    beta_bar = float(np.sum(sq.T @ sq) / n - np.sum(cov**2)) / (d * n)
    return float(min(max(beta_bar, 0.0), delta) / delta)


def oas_shrinkage(centred: np.ndarray, cov: np.ndarray) -> float:
    """Oracle Approximating Shrinkage (Chen et al. 2010, eq. 23) weight for centred samples ``(n, d)``."""
    n, d = centred.shape
    mu = float(np.trace(cov)) / d
    mean_sq = float(np.mean(cov**2))  # tr(S²) / d²
    num = mean_sq + mu**2
    den = (n + 1.0) * (mean_sq - mu**2 / d)
    return 1.0 if den <= 0.0 else float(min(num / den, 1.0))


#: ``shrinkage`` names and the estimators of ``α`` they select.
SHRINKAGE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"lw": ledoit_wolf_shrinkage,
                                                                    "oas": oas_shrinkage}


@dataclass(frozen=True, eq=False)
class ShrunkGaussian:
    """Mean ``(d,)`` and precision ``Σ⁻¹`` ``(d, d)`` (float64) of ``n_samples`` embeddings.

    ``shrinkage`` is the weight ``α`` that ``method`` chose (see the module docstring).
    """

    mean: np.ndarray
    precision: np.ndarray
    shrinkage: float
    method: str
    n_samples: int

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, samples: np.ndarray, method: str = "oas") -> ShrunkGaussian:
        """Fit to ``samples`` ``(n, d)``, ``n >= 2``; ``method`` is a key of :data:`SHRINKAGE`."""
        if method not in SHRINKAGE:
            raise ValueError(f"shrinkage must be one of {sorted(SHRINKAGE)}, got {method!r}")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"fitting needs an (n, d) array with n >= 2, got shape {x.shape}")
        n, d = x.shape
        mean = x.mean(axis=0)
        centred = x - mean
        cov = centred.T @ centred / n
        alpha = SHRINKAGE[method](centred, cov)
        target = max(float(np.trace(cov)) / d, 1e-12)
        shrunk = (1.0 - alpha) * cov + alpha * target * np.eye(d)
        return cls(mean=mean, precision=np.linalg.inv(shrunk), shrinkage=alpha, method=method, n_samples=n)

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Per-dimension Mahalanobis distances ``(n,)`` of ``x`` ``(n, d)`` (or one ``(d,)``, giving ``(1,)``)."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if rows.shape[1] != self.dim:
            raise ValueError(f"embedding has dimension {rows.shape[1]}, the reference {self.dim}")
        diff = rows - self.mean
        sq = np.einsum("ij,jk,ik->i", diff, self.precision, diff)
        out: np.ndarray = np.sqrt(np.maximum(sq, 0.0) / self.dim)
        return out

    def distance(self, x: np.ndarray) -> float:
        """Per-dimension Mahalanobis distance of one embedding ``(d,)``."""
        return float(self.distances(np.asarray(x).ravel())[0])
