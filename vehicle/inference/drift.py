"""The drift monitor: distance of each frame to a running window of the car's own recent frames.

This is not an out-of-distribution score. The window follows the car, so a scene that stays novel
is absorbed into it within ``capacity · every / rate`` seconds and its score falls back to ~1:
that is what makes it useful to watch for *change* (a camera fogging up, dusk falling, a new
city) and useless to decide whether a scene is unlike the data the model was built for. That
second question is answered against a reference fitted offline
(:mod:`vehicle.inference.reference`); the two travel side by side in ``model/scores`` as
``drift`` and ``ood``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from vehicle.inference.gaussian import ShrunkGaussian


class DriftMonitor:
    """Shrunk-Mahalanobis distance (per √d, see :mod:`vehicle.inference.gaussian`) to a running window.

    The window holds the last ``capacity`` embeddings: :meth:`fit` replaces it, :meth:`add`
    appends. A refit costs ``O(n d² + d³)``, so after :meth:`add` the Gaussian is refitted lazily,
    on the first :meth:`score` once ``refit_every`` embeddings were added. Shrinkage is
    Ledoit-Wolf (``"lw"``), as it always was for this window.
    """

    def __init__(self, capacity: int = 2000, min_reference: int = 2, refit_every: int = 1,
                 shrinkage: str = "lw") -> None:
        if refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {refit_every}")
        if min_reference < 2:
            raise ValueError(f"min_reference must be >= 2, got {min_reference}")
        if capacity < min_reference:
            raise ValueError(f"capacity {capacity} is below min_reference {min_reference}")
        self.min_reference = min_reference
        self.refit_every = refit_every
        self.method = shrinkage
        self._added_since_fit = 0
        self._window: deque[np.ndarray] = deque(maxlen=capacity)
        self._gaussian: ShrunkGaussian | None = None

    @property
    def ready(self) -> bool:
        """Whether enough embeddings are held to score."""
        return len(self._window) >= self.min_reference

    @property
    def shrinkage(self) -> float:
        """The shrinkage weight of the last fit (1.0 before any)."""
        return 1.0 if self._gaussian is None else self._gaussian.shrinkage

    def __len__(self) -> int:
        return len(self._window)

    def fit(self, embeddings: np.ndarray) -> DriftMonitor:
        """Replace the window with ``embeddings`` ``(n, d)``, ``n >= min_reference``."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < self.min_reference:
            raise ValueError(f"fit needs an (n, d) array with n >= {self.min_reference}, got {x.shape}")
        self._window.clear()
        self._window.extend(x)
        self._refit()
        return self

    def add(self, embedding: np.ndarray) -> None:
        """Append one embedding ``(d,)`` to the window."""
        self._window.append(np.asarray(embedding, dtype=np.float64).ravel())
        self._added_since_fit += 1

    def score(self, embedding: np.ndarray) -> float:
        """Distance of ``embedding`` ``(d,)`` to the window, per √d (dimensionless)."""
        if not self.ready:
            raise ValueError(f"DriftMonitor holds {len(self)} embeddings, needs {self.min_reference}")
        if self._gaussian is None or self._added_since_fit >= self.refit_every:
            self._refit()
        assert self._gaussian is not None
        return self._gaussian.distance(embedding)

    def _refit(self) -> None:
        self._added_since_fit = 0
        self._gaussian = ShrunkGaussian.fit(np.stack(list(self._window)), self.method)
