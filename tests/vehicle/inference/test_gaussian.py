"""Shrunk Gaussians: the shrinkage weights behave as their papers say, and distances are per √d."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle.config.inference import OOD_SHRINKAGE
from vehicle.inference.gaussian import SHRINKAGE, ShrunkGaussian, ledoit_wolf_shrinkage, oas_shrinkage


def _centred(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = x - x.mean(axis=0)
    return c, c.T @ c / len(x)


@pytest.mark.parametrize("estimator", [ledoit_wolf_shrinkage, oas_shrinkage])
def test_weight_is_high_for_isotropic_data_and_low_with_many_samples_of_structured_data(estimator: object) -> None:
    rng = np.random.default_rng(0)
    iso = rng.standard_normal((20, 200))  # n << d, true covariance is the target itself
    structured = rng.standard_normal((5000, 20)) * np.linspace(0.1, 5.0, 20)  # n >> d, far from isotropic
    high = estimator(*_centred(iso))  # type: ignore[operator]
    low = estimator(*_centred(structured))  # type: ignore[operator]
    assert 0.7 < high <= 1.0 and 0.0 <= low < 0.05


def test_fewer_samples_than_dimensions_still_give_a_usable_precision() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 512))
    for method in SHRINKAGE:
        g = ShrunkGaussian.fit(x, method)
        assert g.precision.shape == (512, 512) and np.all(np.isfinite(g.precision))
        assert 0.0 < g.shrinkage <= 1.0 and g.n_samples == 30


def test_distance_is_about_one_for_the_reference_distribution() -> None:
    rng = np.random.default_rng(2)
    scale = np.linspace(0.5, 2.0, 32)
    g = ShrunkGaussian.fit(rng.standard_normal((20_000, 32)) * scale, "oas")
    new = rng.standard_normal((2000, 32)) * scale
    assert float(np.mean(g.distances(new) ** 2)) == pytest.approx(1.0, abs=0.05)
    assert g.distance(new[0]) == pytest.approx(float(g.distances(new[:1])[0]))
    assert float(np.median(g.distances(new + 3.0 * scale))) > 2.5
    with pytest.raises(ValueError, match="dimension 31"):
        g.distances(new[:, :31])
    with pytest.raises(ValueError, match="shrinkage must be one of"):
        ShrunkGaussian.fit(new, "ridge")


def test_the_cli_offers_exactly_the_estimators() -> None:
    assert set(OOD_SHRINKAGE) == set(SHRINKAGE)
