"""Fitting the OOD reference: the maths on drawn data, then the real check across three domains.

The real check: a reference fitted by ``avdata-vehicle ood fit`` on 16 KITTI frames; the 9 KITTI
frames held back from it score below its threshold, the 6 nuScenes camera frames and 9 frames
rendered by the simulator's camera score above it.
"""

from __future__ import annotations

import numpy as np
import pytest

from vehicle.errors import OodFitError
from vehicle.inference.embedding import EmbeddingSpec
from vehicle.inference.fitting import (
    THRESHOLD_METHOD,
    fit_reference,
    fold_blocks,
    out_of_fold_distances,
    scaled_chi2_quantile,
)
from vehicle.inference.model import Detector, DetectorConfig

from .conftest import FittedReference
from .domains import KITTI_000000, KITTI_FIT, KITTI_HELD_BACK, NUSCENES, images, synthetic_frames


def spec(dim: int) -> EmbeddingSpec:
    return EmbeddingSpec("m.onnx", "ab" * 32, 416, ("a", "b"), 0, dim)


def clustered(rng: np.random.Generator, n_frames: int, views: int, dim: int, spread: float = 0.05) -> list[np.ndarray]:
    """Frames drawn from one Gaussian; each frame's views scatter a little around it."""
    centres = rng.standard_normal((n_frames, dim))
    return [c + spread * rng.standard_normal((views, dim)) for c in centres]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectorConfig(provider="cpu"))


def test_the_threshold_comes_from_held_out_frames_not_from_the_fit_itself() -> None:
    """In 64 dimensions with 24 frames, in-sample distances are far below a new frame's; a threshold
    at their 0.99 quantile would call almost every new frame novel. The out-of-fold threshold
    keeps new frames of the same distribution below it."""
    rng = np.random.default_rng(1)
    groups = clustered(rng, 24, 4, 64)
    result = fit_reference(groups, [f"f{i}" for i in range(24)], spec(64), quantile=0.99, folds=8)
    new = np.concatenate(clustered(rng, 200, 1, 64))
    scores = result.reference.scores(new)
    threshold = result.reference.threshold
    assert threshold.method == THRESHOLD_METHOD and threshold.quantile == 0.99
    assert np.quantile(result.in_sample, 0.99) < 0.6 * threshold.value
    assert np.mean(scores > np.quantile(result.in_sample, 0.99)) > 0.95
    assert np.mean(scores >= threshold.value) <= 0.03  # 1 % expected; the folds err towards fewer alarms
    assert threshold.empirical == pytest.approx(np.quantile(result.out_of_fold, 0.99))
    # A shifted distribution is far above it.
    assert np.min(result.reference.scores(new + 1.5)) > threshold.value


def test_the_quantile_chosen_at_fit_time_sets_the_threshold() -> None:
    groups = clustered(np.random.default_rng(6), 16, 3, 32)
    ids = [str(i) for i in range(16)]
    low, mid, high = (fit_reference(groups, ids, spec(32), quantile=q).reference.threshold for q in (0.9, 0.99, 0.999))
    assert low.value < mid.value < high.value
    assert (low.quantile, mid.quantile, high.quantile) == (0.9, 0.99, 0.999)


def test_views_of_one_frame_never_straddle_a_fold() -> None:
    """A frame whose views are identical copies would score ~0 if a copy could sit in the training
    folds; out of fold it scores like any new frame."""
    rng = np.random.default_rng(2)
    groups = [np.repeat(g[:1], 3, axis=0) for g in clustered(rng, 12, 1, 32)]
    oof = out_of_fold_distances(groups, folds=4)
    assert oof.shape == (36,) and oof.min() > 0.5
    blocks = fold_blocks(12, 5)
    assert [b.tolist() for b in blocks] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9], [10, 11]]


def test_scaled_chi2_quantile_matches_the_chi2_tail() -> None:
    """Per-dimension distances of a true Gaussian: d·ood² is chi-square with d degrees of freedom;
    the fitted quantile lands within 2 % of the sample quantile of a million draws."""
    rng = np.random.default_rng(3)
    dim = 512
    draws = np.sqrt(rng.chisquare(dim, 1_000_000) / dim)
    for q in (0.9, 0.99, 0.999):
        assert scaled_chi2_quantile(draws[:2000], q, dim) == pytest.approx(np.quantile(draws, q), rel=0.02)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"quantile": 1.0}, "quantile"), ({"quantile": 0.3}, "quantile"), ({"folds": 1}, "folds"),
    ({"shrinkage": "ridge"}, "shrinkage"),
])
def test_bad_settings_raise_typed_errors(kwargs: dict[str, object], match: str) -> None:
    groups = clustered(np.random.default_rng(4), 8, 2, 16)
    with pytest.raises(OodFitError, match=match):
        fit_reference(groups, [str(i) for i in range(8)], spec(16), **kwargs)  # type: ignore[arg-type]


def test_too_few_or_repeated_frames_are_refused() -> None:
    groups = clustered(np.random.default_rng(5), 3, 2, 16)
    with pytest.raises(OodFitError, match="3 usable frames, need at least 4"):
        fit_reference(groups, ["a", "b", "c"], spec(16))
    with pytest.raises(OodFitError, match="frame ids repeat"):
        fit_reference(groups + groups[:1], ["a", "b", "c", "a"], spec(16))
    with pytest.raises(OodFitError, match="dimension 32"):
        fit_reference(groups + groups[:1], ["a", "b", "c", "d"], spec(32))
    folded = fit_reference(groups + groups[:1], ["a", "b", "c", "d"], spec(16), folds=8)
    assert folded.reference.fit.folds == 4  # one frame per fold at most


def test_fit_summary_of_the_kitti_reference(kitti_reference: FittedReference) -> None:
    s, ref = kitti_reference.summary, kitti_reference.reference
    assert (s["frames"], s["views_per_frame"], s["samples"]) == (16, 10, 160)
    assert (s["schema"], s["version"], s["id"]) == ("avdata.OodReference", 1, ref.reference_id)
    assert s["threshold"]["value"] == ref.threshold.value and s["threshold"]["quantile"] == 0.99
    assert s["shrinkage"]["method"] == "oas" and 0.0 < s["shrinkage"]["weight"] < 1.0
    assert s["distances"]["in_sample"]["max"] < s["distances"]["out_of_fold"]["median"]
    assert ref.fit.frame_ids == tuple(f"fit/{p.name}" for p in sorted(KITTI_FIT.iterdir()))


def test_held_back_kitti_frames_score_below_the_threshold(
        kitti_reference: FittedReference, detector: Detector) -> None:
    ref = kitti_reference.reference
    held = images(KITTI_HELD_BACK, KITTI_000000)
    assert len(held) == 9
    fitted = {i.split("/")[-1] for i in ref.fit.frame_ids}
    assert not fitted & {name for name, _ in held} and "000000.jpeg" not in fitted  # distinct frames
    scores = {name: ref.score(detector.detect(bgr).embedding) for name, bgr in held}
    assert max(scores.values()) < ref.threshold.value, scores


def test_nuscenes_frames_score_above_the_threshold(kitti_reference: FittedReference, detector: Detector) -> None:
    ref = kitti_reference.reference
    frames = images(NUSCENES)
    assert len(frames) == 6
    scores = {name: ref.score(detector.detect(bgr).embedding) for name, bgr in frames}
    assert min(scores.values()) > ref.threshold.value, scores


def test_synthetic_frames_score_above_the_threshold(kitti_reference: FittedReference, detector: Detector) -> None:
    """At KITTI's own image size the rendered frames come closest (4-12 % above the threshold when
    measured); at 640x360 and 1600x900 they score about 1.75x it."""
    ref = kitti_reference.reference
    scores = {name: ref.score(detector.detect(bgr).embedding) for name, bgr in synthetic_frames()}
    assert len(scores) == 9
    assert min(scores.values()) > ref.threshold.value, scores
