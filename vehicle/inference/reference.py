"""The out-of-distribution reference: a Gaussian of one domain's embeddings, fitted offline, and its file.

``avdata-vehicle ood fit`` (:mod:`vehicle.inference.fitting`) builds it from frames that stand
for the domain the model is meant for; the inference process loads it once, at start, from
``[inference] ood_reference``, and never changes it while it runs (unlike the drift monitor of
:mod:`vehicle.inference.drift`). A frame's ``ood`` score is its per-dimension shrunk-Mahalanobis
distance to the reference (:mod:`vehicle.inference.gaussian`); ``ood_ratio = ood / threshold``
is ``>= 1`` above the threshold fitted with it.

The file is one versioned msgpack envelope, ``wire.pack("avdata.OodReference", 1, body)``::

    embedding: {model_name, model_sha256, input_size_px, feature_tensors, projection_seed, dim, recipe}
    gaussian:  {mean: <f8 bytes × dim, precision: <f8 bytes × dim², shrinkage: float, method: str,
                n_samples: int}
    threshold: {value: float, quantile: float, method: str, empirical: float}
    fit:       {frame_ids: [str], augment: str, folds: int, sources: [str], fitted_unix_s: int}

Its id is the first 16 hex digits of the file's sha256, so the scores name the exact file that
produced them. Decoding raises :class:`vehicle.errors.OodReferenceUnreadable` (not a reference,
or malformed inside), :class:`~vehicle.errors.OodReferenceVersionError` (a version this build
cannot read); :meth:`OodReference.check` raises :class:`~vehicle.errors.OodReferenceMismatch`
when the detector's embedding is not the one the reference was fitted with.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from shared import wire
from shared.errors import ContractError, UnknownVersion
from vehicle.errors import OodReferenceMismatch, OodReferenceUnreadable, OodReferenceVersionError
from vehicle.inference.embedding import EmbeddingSpec
from vehicle.inference.gaussian import ShrunkGaussian

SCHEMA = "avdata.OodReference"
VERSION = 1
VERSIONS = frozenset({1})
#: The file name suffix ``ood fit`` suggests; any name loads.
SUFFIX = ".avood"


@dataclass(frozen=True)
class FitRecord:
    """How a reference was fitted: which frames (ids), views per frame, folds, sources, when (Unix s)."""

    frame_ids: tuple[str, ...]
    augment: str
    folds: int
    sources: tuple[str, ...]
    fitted_unix_s: int


@dataclass(frozen=True)
class Threshold:
    """The ``ood`` value above which a frame counts as out of distribution.

    ``value`` is the ``quantile`` of the in-domain distance distribution estimated by ``method``;
    ``empirical`` is the plain sample quantile of the same out-of-fold distances, kept for comparison.
    """

    value: float
    quantile: float
    method: str
    empirical: float


@dataclass(frozen=True, eq=False)
class OodReference:
    """A fitted reference; ``reference_id`` is ``""`` until it is saved or loaded, ``version`` is the
    format version of the file it was read from (:data:`VERSION` for one fitted by this build)."""

    gaussian: ShrunkGaussian
    threshold: Threshold
    spec: EmbeddingSpec
    fit: FitRecord
    reference_id: str = ""
    version: int = VERSION

    def check(self, spec: EmbeddingSpec, where: str = "ood reference") -> None:
        """Raise :class:`OodReferenceMismatch` unless ``spec`` embeds frames as this reference's did."""
        diffs = self.spec.differences(spec)
        if diffs:
            raise OodReferenceMismatch(
                f"{where} was fitted with {self.spec.model_name} and another embedding ({'; '.join(diffs)}, "
                "reference != detector): refit it with `avdata-vehicle ood fit` for this model")

    def score(self, embedding: np.ndarray) -> float:
        """The ``ood`` score of one embedding ``(dim,)``: per-dimension distance to the reference."""
        return float(self.scores(np.asarray(embedding).reshape(1, -1))[0])

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``ood`` scores ``(n,)`` of embeddings ``(n, dim)``; a wrong ``dim`` raises OodReferenceMismatch."""
        x = np.asarray(embeddings)
        if x.ndim != 2 or x.shape[1] != self.spec.dim:
            raise OodReferenceMismatch(f"embeddings of shape {x.shape} given to an ood reference of dimension "
                                       f"{self.spec.dim}: the detector is not the one it was fitted with")
        return self.gaussian.distances(x)

    def to_body(self) -> dict[str, Any]:
        g, t, f = self.gaussian, self.threshold, self.fit
        return {
            "embedding": self.spec.to_body(),
            "gaussian": {"mean": np.ascontiguousarray(g.mean, "<f8").tobytes(),
                         "precision": np.ascontiguousarray(g.precision, "<f8").tobytes(),
                         "shrinkage": g.shrinkage, "method": g.method, "n_samples": g.n_samples},
            "threshold": {"value": t.value, "quantile": t.quantile, "method": t.method, "empirical": t.empirical},
            "fit": {"frame_ids": list(f.frame_ids), "augment": f.augment, "folds": f.folds,
                    "sources": list(f.sources), "fitted_unix_s": f.fitted_unix_s},
        }

    def encode(self) -> bytes:
        """The file's bytes."""
        return wire.pack(SCHEMA, VERSION, self.to_body())


def reference_id(data: bytes) -> str:
    """The id of a reference file: the first 16 hex digits of its sha256."""
    return hashlib.sha256(data).hexdigest()[:16]


def _map(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = wire.field(body, name, dict, SCHEMA)
    assert isinstance(value, dict)
    return value


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    items = wire.field(body, name, list, SCHEMA)
    if not all(isinstance(i, str) for i in items):
        raise OodReferenceUnreadable(f"{SCHEMA}: {name} must be a list of strings")
    return tuple(items)


def _spec(body: dict[str, Any]) -> EmbeddingSpec:
    f = wire.field
    return EmbeddingSpec(
        model_name=f(body, "model_name", str, SCHEMA), model_sha256=f(body, "model_sha256", str, SCHEMA),
        input_size_px=f(body, "input_size_px", int, SCHEMA), feature_tensors=_strings(body, "feature_tensors"),
        projection_seed=f(body, "projection_seed", int, SCHEMA), dim=f(body, "dim", int, SCHEMA),
        recipe=f(body, "recipe", str, SCHEMA))


def _gaussian(body: dict[str, Any], dim: int) -> ShrunkGaussian:
    f = wire.field
    mean, precision = f(body, "mean", bytes, SCHEMA), f(body, "precision", bytes, SCHEMA)
    if dim <= 0 or len(mean) != 8 * dim or len(precision) != 8 * dim * dim:
        raise OodReferenceUnreadable(
            f"{SCHEMA}: mean has {len(mean)} bytes and precision {len(precision)}, but embedding.dim {dim} "
            f"needs {8 * dim} and {8 * dim * dim}: the file is damaged; refit it")
    return ShrunkGaussian(mean=np.frombuffer(mean, "<f8").astype(np.float64),
                          precision=np.frombuffer(precision, "<f8").astype(np.float64).reshape(dim, dim),
                          shrinkage=f(body, "shrinkage", float, SCHEMA), method=f(body, "method", str, SCHEMA),
                          n_samples=f(body, "n_samples", int, SCHEMA))


def decode_reference(data: bytes, where: str = SCHEMA) -> OodReference:
    """Decode a reference file's bytes; ``where`` names it in error messages."""
    try:
        version, body = wire.unpack(data, SCHEMA, VERSIONS)
        spec = _spec(_map(body, "embedding"))
        gaussian = _gaussian(_map(body, "gaussian"), spec.dim)
        t, fit = _map(body, "threshold"), _map(body, "fit")
        f = wire.field
        threshold = Threshold(value=f(t, "value", float, SCHEMA), quantile=f(t, "quantile", float, SCHEMA),
                              method=f(t, "method", str, SCHEMA), empirical=f(t, "empirical", float, SCHEMA))
        record = FitRecord(frame_ids=_strings(fit, "frame_ids"), augment=f(fit, "augment", str, SCHEMA),
                           folds=f(fit, "folds", int, SCHEMA), sources=_strings(fit, "sources"),
                           fitted_unix_s=f(fit, "fitted_unix_s", int, SCHEMA))
    except UnknownVersion as exc:
        raise OodReferenceVersionError(f"{where}: {exc}; refit it with this build's `avdata-vehicle ood fit`") from exc
    except ContractError as exc:
        raise OodReferenceUnreadable(f"{where}: not a usable {SCHEMA} file: {exc}") from exc
    except OodReferenceUnreadable as exc:
        raise OodReferenceUnreadable(f"{where}: {exc}") from exc
    if not threshold.value > 0.0:
        raise OodReferenceUnreadable(f"{where}: threshold {threshold.value!r} must be > 0; refit it")
    return OodReference(gaussian, threshold, spec, record, reference_id(data), version)


def load_reference(path: Path) -> OodReference:
    """Read and decode the reference file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OodReferenceUnreadable(f"cannot read ood reference {path}: {exc.strerror or exc}") from exc
    return decode_reference(data, path.name)


def save_reference(reference: OodReference, path: Path) -> OodReference:
    """Write ``reference`` to ``path`` atomically (temporary file, fsync, rename); returns it with its id."""
    data = reference.encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return replace(reference, reference_id=reference_id(data))
