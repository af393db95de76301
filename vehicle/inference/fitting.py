"""Fitting an out-of-distribution reference from the embeddings of one domain's frames. Pure NumPy.

Input: one group of embeddings per frame, ``(v, d)`` each, the frame itself and ``v − 1`` extra
views of it (mirror image, crops; see :mod:`vehicle.inference.frames`), in source order.

1. **Gaussian.** Mean and shrunk covariance of every view of every frame
   (:class:`vehicle.inference.gaussian.ShrunkGaussian`, OAS shrinkage by default: with tens of
   frames in 512 dimensions the sample covariance is singular, and OAS is the estimator built for
   that regime). Views multiply the samples but not the frames: they are correlated, and the
   shrinkage weight (chosen from the data) is what keeps the estimate honest.
2. **Out-of-fold distances.** A frame's distance to a Gaussian fitted *with* it is far smaller
   than a new frame's (16 KITTI frames with 10 views each: at most 0.55 in-sample, a median of
   1.78 out of fold), so a threshold from in-sample distances would call every new frame novel. The frames
   are cut into ``folds`` contiguous blocks; each block's views are scored against a Gaussian
   fitted on the other blocks. Blocks, not random frames, so that neighbouring frames of a log
   (nearly the same image) do not leak across a fold; all views of a frame stay in one block.
3. **Threshold.** The squared distances ``d · ood²`` are moment-matched to a scaled chi-square
   ``c · χ²_k`` (``k = 2m²/s²``, ``c = s²/2m`` from their mean ``m`` and variance ``s²``), whose
   ``quantile`` is taken with the Wilson-Hilferty approximation. With few frames the plain sample
   quantile of 0.99 is little more than the largest distance seen; the fitted tail extrapolates
   past it. The plain quantile is recorded too (``Threshold.empirical``).

Each fold holds out about ``1/folds`` of the frames, so its Gaussian saw fewer frames than the
final one: out-of-fold distances run a little high, and the threshold errs towards fewer alarms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from vehicle.errors import OodFitError
from vehicle.inference.embedding import EmbeddingSpec
from vehicle.inference.gaussian import SHRINKAGE, ShrunkGaussian
from vehicle.inference.reference import FitRecord, OodReference, Threshold

THRESHOLD_METHOD = "scaled_chi2_out_of_fold"
#: Fewer frames than this cannot give both a covariance and a held-out estimate of its tail.
MIN_FRAMES = 4


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted reference and the distances it was judged by: ``in_sample`` ``(Σv,)`` to the final
    Gaussian, ``out_of_fold`` ``(Σv,)`` to the Gaussian of the other folds (the threshold's input)."""

    reference: OodReference
    in_sample: np.ndarray
    out_of_fold: np.ndarray


def fold_blocks(n_frames: int, folds: int) -> list[np.ndarray]:
    """Frame indices ``0..n_frames-1`` cut into ``folds`` contiguous blocks of near-equal size."""
    return [b for b in np.array_split(np.arange(n_frames), folds) if b.size]


def out_of_fold_distances(groups: Sequence[np.ndarray], folds: int, shrinkage: str = "oas") -> np.ndarray:
    """Distances ``(Σv,)`` of every view, each scored against a Gaussian fitted without its block."""
    out: list[np.ndarray] = []
    for block in fold_blocks(len(groups), folds):
        held = set(block.tolist())
        train = np.concatenate([g for i, g in enumerate(groups) if i not in held])
        gaussian = ShrunkGaussian.fit(train, shrinkage)
        out.extend(gaussian.distances(groups[i]) for i in block)
    return np.concatenate(out)


def scaled_chi2_quantile(distances: np.ndarray, quantile: float, dim: int) -> float:
    """The ``quantile`` of per-dimension distances, from a scaled chi-square fitted to ``dim · d²``."""
    sq = dim * np.asarray(distances, dtype=np.float64) ** 2
    mean, var = float(sq.mean()), float(sq.var(ddof=1)) if sq.size > 1 else 0.0
    if var <= 0.0 or mean <= 0.0:
        return float(np.sqrt(mean / dim))
    k, scale = 2.0 * mean * mean / var, var / (2.0 * mean)
    z = NormalDist().inv_cdf(quantile)
    wilson_hilferty = k * max(1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k)), 0.0) ** 3
    return float(np.sqrt(scale * wilson_hilferty / dim))


def check_settings(quantile: float, folds: int, shrinkage: str) -> None:
    """Raise :class:`OodFitError` for a setting no fit can use."""
    if not 0.5 < quantile < 1.0:
        raise OodFitError(f"quantile must be within (0.5, 1), got {quantile!r}")
    if folds < 2:
        raise OodFitError(f"folds must be >= 2, got {folds}")
    if shrinkage not in SHRINKAGE:
        raise OodFitError(f"shrinkage must be one of {', '.join(sorted(SHRINKAGE))}, got {shrinkage!r}")


def fit_reference(groups: Sequence[np.ndarray], frame_ids: Sequence[str], spec: EmbeddingSpec, *,
                  quantile: float = 0.99, folds: int = 8, shrinkage: str = "oas", augment: str = "none",
                  sources: Sequence[str] = (), fitted_unix_s: int = 0) -> FitResult:
    """The reference of ``groups`` (one ``(v, spec.dim)`` array per frame, ids ``frame_ids``).

    ``folds`` above the number of frames becomes one fold per frame; the file records the folds used.
    """
    check_settings(quantile, folds, shrinkage)
    if len(groups) != len(frame_ids):
        raise OodFitError(f"{len(groups)} embedding groups for {len(frame_ids)} frame ids")
    if len(set(frame_ids)) != len(frame_ids):
        raise OodFitError("frame ids repeat: a frame given twice would leak across the folds")
    if len(groups) < MIN_FRAMES:
        raise OodFitError(f"{len(groups)} usable frames, need at least {MIN_FRAMES}: give more frames")
    folds = min(folds, len(groups))  # one frame per fold at most: leave-one-frame-out
    arrays = [np.atleast_2d(np.asarray(g, dtype=np.float64)) for g in groups]
    if any(a.shape[1] != spec.dim for a in arrays):
        raise OodFitError(f"embeddings must have dimension {spec.dim} (the detector's), got "
                          f"{sorted({a.shape[1] for a in arrays})}")
    all_views = np.concatenate(arrays)
    gaussian = ShrunkGaussian.fit(all_views, shrinkage)
    oof = out_of_fold_distances(arrays, folds, shrinkage)
    threshold = Threshold(value=scaled_chi2_quantile(oof, quantile, spec.dim), quantile=quantile,
                          method=THRESHOLD_METHOD, empirical=float(np.quantile(oof, quantile)))
    record = FitRecord(frame_ids=tuple(frame_ids), augment=augment, folds=folds, sources=tuple(sources),
                       fitted_unix_s=fitted_unix_s)
    return FitResult(OodReference(gaussian, threshold, spec, record), gaussian.distances(all_views), oof)
