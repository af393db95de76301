"""The drift monitor follows the car: a scene that stays novel is absorbed, which is why it is no
OOD score; the offline reference keeps calling the same scene novel."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle.inference.drift import DriftMonitor
from vehicle.inference.embedding import EmbeddingSpec
from vehicle.inference.fitting import fit_reference


def test_a_novel_scene_is_absorbed_by_the_window_but_not_by_the_reference() -> None:
    rng = np.random.default_rng(0)
    dim = 32
    home = [rng.standard_normal((1, dim)) for _ in range(200)]
    spec = EmbeddingSpec("m.onnx", "0" * 64, 416, ("a",), 0, dim)
    reference = fit_reference(home, [str(i) for i in range(200)], spec).reference
    drift = DriftMonitor(capacity=200, min_reference=2, refit_every=1).fit(np.concatenate(home))
    novel = rng.standard_normal((400, dim)) + 4.0  # a new city, for a long while
    first_drift, first_ood = drift.score(novel[0]), reference.score(novel[0])
    for x in novel[:300]:
        drift.add(x)
    last_drift, last_ood = drift.score(novel[-1]), reference.score(novel[-1])
    assert first_drift > 3.0 and first_ood > reference.threshold.value
    assert last_drift < 1.5  # the window now holds only the new city
    assert last_ood > reference.threshold.value  # the reference still calls it novel


def test_window_is_bounded_and_refits_lazily() -> None:
    rng = np.random.default_rng(1)
    drift = DriftMonitor(capacity=5, min_reference=3, refit_every=2)
    assert not drift.ready and drift.shrinkage == 1.0
    for x in rng.standard_normal((8, 4)):
        drift.add(x)
    assert len(drift) == 5 and drift.ready
    assert np.isfinite(drift.score(np.zeros(4)))
    with pytest.raises(ValueError, match="refit_every"):
        DriftMonitor(refit_every=0)
    with pytest.raises(ValueError, match="needs 3"):
        DriftMonitor(min_reference=3).score(np.zeros(4))
