"""The reference file: a versioned envelope, its id, and typed errors for every way it can be wrong."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import msgpack
import numpy as np
import pytest

from shared import wire
from vehicle.errors import OodReferenceMismatch, OodReferenceUnreadable, OodReferenceVersionError
from vehicle.inference.embedding import EmbeddingSpec
from vehicle.inference.fitting import fit_reference
from vehicle.inference.model import Detector, DetectorConfig
from vehicle.inference.reference import SCHEMA, OodReference, load_reference, save_reference

from .conftest import FittedReference

SPEC = EmbeddingSpec("yolox_nano.onnx", "ab" * 32, 416, ("956", "990", "1024"), 0, 16)


def small_reference() -> OodReference:
    rng = np.random.default_rng(0)
    groups = [rng.standard_normal((2, 16)) for _ in range(8)]
    return fit_reference(groups, [f"f{i}" for i in range(8)], SPEC, augment="flip", sources=["frames:x"],
                         fitted_unix_s=1_700_000_000).reference


def test_round_trip_keeps_every_field_and_the_id_is_the_files_sha256(tmp_path: Path) -> None:
    ref = small_reference()
    saved = save_reference(ref, tmp_path / "r.avood")
    data = (tmp_path / "r.avood").read_bytes()
    assert saved.reference_id == hashlib.sha256(data).hexdigest()[:16]
    assert not list(tmp_path.glob("*.tmp"))
    back = load_reference(tmp_path / "r.avood")
    assert back.reference_id == saved.reference_id and back.version == 1
    assert (back.spec, back.threshold, back.fit) == (ref.spec, ref.threshold, ref.fit)
    np.testing.assert_array_equal(back.gaussian.mean, ref.gaussian.mean)
    np.testing.assert_array_equal(back.gaussian.precision, ref.gaussian.precision)
    assert (back.gaussian.shrinkage, back.gaussian.method, back.gaussian.n_samples) == (
        ref.gaussian.shrinkage, "oas", 16)
    x = np.random.default_rng(1).standard_normal(16)
    assert back.score(x) == ref.score(x)
    schema, version, _ = wire.unpack_any(data)
    assert (schema, version) == (SCHEMA, 1)


def _tampered(ref: OodReference, version: int = 1, schema: str = SCHEMA, **changes: object) -> bytes:
    body = ref.to_body()
    for path, value in changes.items():
        parent, leaf = path.split("__")
        body[parent][leaf] = value
    return wire.pack(schema, version, body)


@pytest.mark.parametrize(("mutate", "error", "match"), [
    (lambda r: _tampered(r, version=2), OodReferenceVersionError, "version 2 is not supported"),
    (lambda r: _tampered(r, schema="avdata.ModelScores"), OodReferenceUnreadable, "expected a 'avdata.OodReference'"),
    (lambda r: _tampered(r, gaussian__mean=b"\x00" * 8), OodReferenceUnreadable, "mean has 8 bytes"),
    (lambda r: _tampered(r, embedding__dim=32), OodReferenceUnreadable, "embedding.dim 32"),
    (lambda r: _tampered(r, threshold__value=0.0), OodReferenceUnreadable, "threshold 0.0 must be > 0"),
    (lambda r: _tampered(r, fit__frame_ids=[1, 2]), OodReferenceUnreadable, "frame_ids must be a list of strings"),
    (lambda r: _tampered(r, embedding__model_sha256=None), OodReferenceUnreadable, "'model_sha256'"),
    (lambda r: r.encode()[:-100], OodReferenceUnreadable, "ends early"),
    (lambda r: msgpack.packb([1, 2]), OodReferenceUnreadable, "expected a map"),
])
def test_bad_files_raise_typed_errors(tmp_path: Path, mutate: object, error: type[Exception], match: str) -> None:
    path = tmp_path / "bad.avood"
    path.write_bytes(mutate(small_reference()))  # type: ignore[operator]
    with pytest.raises(error, match=match) as info:
        load_reference(path)
    assert str(info.value).startswith("bad.avood: ") and "\n" not in str(info.value)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(OodReferenceUnreadable, match=r"cannot read ood reference .*nope\.avood"):
        load_reference(tmp_path / "nope.avood")


def test_a_wrong_dimension_is_refused_when_scoring() -> None:
    ref = small_reference()
    with pytest.raises(OodReferenceMismatch, match="dimension 16"):
        ref.score(np.zeros(512, np.float32))


@pytest.mark.parametrize(("change", "field"), [
    ({"model_sha256": "cd" * 32}, "model_sha256"), ({"input_size_px": 640}, "input_size_px"),
    ({"feature_tensors": ("1", "2", "3")}, "feature_tensors"), ({"projection_seed": 3}, "projection_seed"),
    ({"dim": 256}, "dim"), ({"recipe": "other-v2"}, "recipe"),
])
def test_an_embedding_spec_that_differs_is_refused(change: dict[str, object], field: str) -> None:
    ref = small_reference()
    ref.check(replace(SPEC, model_name="renamed.onnx"))  # the same model under another name is fine
    with pytest.raises(OodReferenceMismatch, match=f"{field} .* != .*refit it with `avdata-vehicle ood fit`"):
        ref.check(replace(SPEC, **change))  # type: ignore[arg-type]


def test_the_real_detector_refuses_a_reference_of_another_embedding(kitti_reference: FittedReference) -> None:
    """The bundled model with the fitted settings matches; another projection seed or input size
    (either changes every embedding) is refused by name."""
    ref = kitti_reference.reference
    ref.check(Detector(DetectorConfig(provider="cpu")).embedding_spec)
    assert ref.spec.model_sha256 == hashlib.sha256(
        DetectorConfig().resolved_model_path().read_bytes()).hexdigest()
    with pytest.raises(OodReferenceMismatch, match="projection_seed 0 != 1"):
        ref.check(Detector(DetectorConfig(provider="cpu", embedding_seed=1)).embedding_spec)
    with pytest.raises(OodReferenceMismatch, match="input_size_px 416 != 320"):
        ref.check(Detector(DetectorConfig(provider="cpu", input_size_px=320)).embedding_spec)
