"""The segment's ``visual_embedding[512]``: the vehicle's per-frame embeddings pooled over the segment.

The vehicle's inference process embeds every frame it scores (:mod:`vehicle.inference.embedding`:
YOLOX feature maps through a fixed orthonormal projection, unit norm) and publishes it on
``model/scores``; the snapshot carries that channel, so the cloud pools what the car computed
instead of running a model of its own. :func:`pool_embeddings` is the **mean of the unit vectors,
renormalised**: every scored frame counts the same. Weighting by the detector's uncertainty was
considered and not taken: uncertain frames are the ones mining looks for, and down-weighting them
would pull a segment's vector towards its ordinary frames.

A cloud-side image-text encoder (CLIP/SigLIP family) plugs in as an :class:`ImageTextEncoder`; its
image embedding of the segment's keyframe is stored beside the pooled one and its text side serves
text-to-image search. No implementation ships: none of the registry's CLIP packages carries its
weights (each downloads them from a model hub or a bucket at first use, which the service's
machines cannot reach), so the enrichment runs without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError

#: How the pooled embedding is made; stored with every visual embedding.
POOLING = "mean_of_unit_vectors"


def pool_embeddings(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32] | None:
    """Mean of the unit-normalised rows of ``embeddings`` ``(F, D)``, renormalised: ``(D,)`` float32
    of unit norm. Rows that are not finite or have zero norm are left out; ``None`` when none is
    left, or when the mean cancels to zero (opposite frames)."""
    a = np.asarray(embeddings, dtype=np.float64)
    if a.ndim != 2:
        raise EnrichInputError(f"embeddings must be (frames, dim), got shape {a.shape}")
    norms = np.linalg.norm(a, axis=1)
    keep = np.isfinite(a).all(axis=1) & (norms > 1e-12)
    if not keep.any():
        return None
    mean = (a[keep] / norms[keep, None]).mean(axis=0)
    n = float(np.linalg.norm(mean))
    if n < 1e-9:
        return None
    return np.asarray(mean / n, dtype=np.float32)


@runtime_checkable
class ImageTextEncoder(Protocol):
    """A joint image-text embedding model (CLIP/SigLIP family) running in the cloud."""

    name: str  # model and weights, recorded with every embedding it makes
    dim: int

    def encode_images(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Unit-norm embeddings ``(N, dim)`` of ``(H, W, 3)`` uint8 RGB images."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-norm embeddings ``(N, dim)`` of text queries, in the images' space."""
        ...
