"""Scene embeddings from the detector's own feature maps, and an out-of-distribution score.

The detector has no 512-d layer, so the embedding is derived, deterministically, from the three
feature maps that feed the YOLOX head (the PAFPN outputs at strides 8, 16 and 32; 64, 128 and 256
channels for YOLOX-nano), which the session exposes as extra graph outputs:

1. each map ``(1, C, H, W)`` is mean-pooled and max-pooled over H×W, giving ``2C`` numbers;
2. each of the six pooled vectors is L2-normalised, so every scale and both poolings weigh the
   same whatever their activation range, then they are concatenated (``2 · 448 = 896`` for nano);
3. the result is multiplied by a fixed ``(896, 512)`` matrix with orthonormal columns, drawn from
   a seeded Gaussian and orthonormalised by QR (an isometry onto a random 512-d subspace, so
   distances between scenes are kept up to a near-constant factor, Johnson-Lindenstrauss style);
4. the 512-d vector is L2-normalised.

Same model, same seed, same frame: same embedding, bit for bit on one machine.
"""

from __future__ import annotations

from collections import deque

import numpy as np

EMBEDDING_DIM = 512


class FeatureProjector:
    """Turns the head-input feature maps of one frame into a unit-norm embedding ``(dim,)``."""

    def __init__(self, channels: tuple[int, ...], dim: int = EMBEDDING_DIM, seed: int = 0) -> None:
        in_dim = 2 * sum(channels)
        if in_dim < dim:
            raise ValueError(f"pooled features have {in_dim} dimensions, fewer than the {dim} asked for")
        self.channels = channels
        self.dim = dim
        gauss = np.random.default_rng(seed).standard_normal((in_dim, dim))
        q, r = np.linalg.qr(gauss)
        # Fix QR's sign ambiguity so the matrix depends on the seed alone, not on the LAPACK build.
        self._matrix = (q * np.sign(np.diag(r))).astype(np.float32)

    def pooled(self, feature_maps: list[np.ndarray]) -> np.ndarray:
        """Block-normalised mean and max pools of ``(1, C, H, W)`` maps, concatenated ``(2ΣC,)``."""
        got = tuple(int(f.shape[1]) for f in feature_maps)
        if got != self.channels:
            raise ValueError(f"feature maps have {got} channels, the projector expects {self.channels}")
        blocks: list[np.ndarray] = []
        for fmap in feature_maps:
            flat = fmap.reshape(fmap.shape[1], -1).astype(np.float32)
            blocks.extend((flat.mean(axis=1), flat.max(axis=1)))
        return np.concatenate([b / max(float(np.linalg.norm(b)), 1e-12) for b in blocks])

    def __call__(self, feature_maps: list[np.ndarray]) -> np.ndarray:
        """The unit-norm float32 embedding ``(dim,)`` of one frame's feature maps."""
        out = self.pooled(feature_maps) @ self._matrix
        unit: np.ndarray = (out / max(float(np.linalg.norm(out)), 1e-12)).astype(np.float32)
        return unit


class OodScorer:
    """Out-of-distribution score: Mahalanobis distance to a reference set of embeddings.

    The reference covariance ``S`` (``d × d``, from ``n`` reference embeddings) is shrunk towards
    a scaled identity with the Ledoit-Wolf weight ``α`` (computed from the data, in [0, 1]):
    ``Σ = (1 − α) S + α (tr S / d) I``, which stays invertible with far fewer samples than
    dimensions. ``score(x) = sqrt((x − μ)ᵀ Σ⁻¹ (x − μ) / d)``: about 1 for a sample drawn from the
    reference distribution, growing with how far outside it ``x`` lies (dimensionless).

    The reference is a running window of the last ``capacity`` embeddings: :meth:`fit` replaces
    it, :meth:`add` appends. A refit costs ``O(n d² + d³)``, so after :meth:`add` the model is
    refitted lazily, on the first :meth:`score` once ``refit_every`` embeddings were added.
    """

    def __init__(self, capacity: int = 2000, min_reference: int = 2, refit_every: int = 1) -> None:
        if refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {refit_every}")
        if min_reference < 2:
            raise ValueError(f"min_reference must be >= 2, got {min_reference}")
        if capacity < min_reference:
            raise ValueError(f"capacity {capacity} is below min_reference {min_reference}")
        self.min_reference = min_reference
        self.refit_every = refit_every
        self._added_since_fit = 0
        self._reference: deque[np.ndarray] = deque(maxlen=capacity)
        self._mean: np.ndarray | None = None
        self._precision: np.ndarray | None = None
        self.shrinkage = 1.0

    @property
    def ready(self) -> bool:
        """Whether enough reference embeddings are held to score."""
        return len(self._reference) >= self.min_reference

    def __len__(self) -> int:
        return len(self._reference)

    def fit(self, embeddings: np.ndarray) -> OodScorer:
        """Replace the reference set with ``embeddings`` ``(n, d)``, ``n >= min_reference``."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < self.min_reference:
            raise ValueError(f"fit needs an (n, d) array with n >= {self.min_reference}, got {x.shape}")
        self._reference.clear()
        self._reference.extend(x)
        self._refit()
        return self

    def add(self, embedding: np.ndarray) -> None:
        """Append one embedding ``(d,)`` to the running reference set."""
        self._reference.append(np.asarray(embedding, dtype=np.float64).ravel())
        self._added_since_fit += 1

    def score(self, embedding: np.ndarray) -> float:
        """Shrunk-Mahalanobis distance of ``embedding`` ``(d,)`` to the reference, per √d."""
        if not self.ready:
            raise ValueError(f"OodScorer holds {len(self)} reference embeddings, needs {self.min_reference}")
        if self._precision is None or self._added_since_fit >= self.refit_every:
            self._refit()
        assert self._mean is not None and self._precision is not None
        diff = np.asarray(embedding, dtype=np.float64).ravel() - self._mean
        if diff.shape != self._mean.shape:
            raise ValueError(f"embedding has shape {diff.shape}, the reference {self._mean.shape}")
        return float(np.sqrt(max(float(diff @ self._precision @ diff), 0.0) / diff.size))

    def _refit(self) -> None:
        self._added_since_fit = 0
        x = np.stack(list(self._reference))
        n, d = x.shape
        self._mean = x.mean(axis=0)
        centred = x - self._mean
        cov = centred.T @ centred / n
        self.shrinkage = ledoit_wolf_shrinkage(centred, cov)
        target = max(float(np.trace(cov)) / d, 1e-12)
        shrunk = (1.0 - self.shrinkage) * cov + self.shrinkage * target * np.eye(d)
        self._precision = np.linalg.inv(shrunk)


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
