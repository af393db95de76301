"""Scene embeddings from the detector's own feature maps, and what identifies them.

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

Same model, same seed, same frame: same embedding, bit for bit on one machine. An
:class:`EmbeddingSpec` names everything that decides the embedding (the model file's sha256, the
input size, the feature tensors, the projection seed and dimension, and this recipe's name), so a
reference fitted offline (:mod:`vehicle.inference.reference`) can refuse a detector whose
embeddings would not be comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

EMBEDDING_DIM = 512
#: Name of the pooling and projection steps above; change it whenever they change.
EMBEDDING_RECIPE = "pafpn-meanmax-l2-qr512-v1"


@dataclass(frozen=True)
class EmbeddingSpec:
    """What decides a detector's embedding; two detectors with equal specs embed a frame alike.

    ``model_sha256`` is the hex sha256 of the ONNX file's bytes, ``model_name`` its file name (for
    messages only: a renamed copy of the same model matches).
    """

    model_name: str
    model_sha256: str
    input_size_px: int
    feature_tensors: tuple[str, ...]
    projection_seed: int
    dim: int
    recipe: str = EMBEDDING_RECIPE

    def differences(self, other: EmbeddingSpec) -> list[str]:
        """``"field: mine != other's"`` for each field that differs (``model_name`` excluded)."""
        out = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name != "model_name" and mine != theirs:
                out.append(f"{f.name} {mine!r} != {theirs!r}")
        return out

    def to_body(self) -> dict[str, object]:
        """A msgpack-ready map of every field."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


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
