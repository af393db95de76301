"""The avdata.ModelScores contract: round trip, consumers' view, and typed errors on bad payloads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
import numpy as np
import pytest

from shared import wire
from shared.errors import ContractError, MalformedMessage, UnknownVersion
from shared.messages import from_frames
from shared.model_scores import ENCODING, SCHEMA, Detection, ModelScores, decode_scores
from vehicle.triggers import rules as triggers


def sample(ood: float | None = 1.7) -> ModelScores:
    emb = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    return ModelScores(
        source_topic="camera/front", frame_seq=41, t_sensor_ns=1_532_402_927_612_460_000, image_w_px=1600,
        image_h_px=900, model_name="yolox_nano", provider="CPUExecutionProvider", inference_ns=81_000_000,
        uncertainty=0.085, margin=0.41, least_confidence=0.32, ood_score=ood,
        detections=(Detection((130.5, 228.0, 612.0, 632.25), 7, "truck", 0.68),
                    Detection((1001.0, 483.0, 1077.0, 531.0), 2, "car", 0.49)),
        embedding=emb / np.linalg.norm(emb),
    )


def test_round_trip_keeps_every_field() -> None:
    original = sample()
    got = decode_scores(original.encode())
    for name in ("source_topic", "frame_seq", "t_sensor_ns", "image_w_px", "image_h_px", "model_name",
                 "provider", "inference_ns", "uncertainty", "margin", "least_confidence", "ood_score",
                 "detections"):
        assert getattr(got, name) == getattr(original, name), name
    assert got.embedding.dtype == np.float32 and got.embedding.shape == (512,)
    np.testing.assert_array_equal(got.embedding, original.embedding)


def test_ood_is_absent_until_the_reference_is_ready() -> None:
    payload = sample(ood=None).encode()
    assert "ood" not in wire.unpack(payload, SCHEMA, frozenset({1}))[1]["scores"]
    assert decode_scores(payload).ood_score is None


def test_the_trigger_engine_reads_exactly_the_scores() -> None:
    """vehicle.triggers.rules reads every numeric field at the top of the body and in ``scores``: frame
    times and sizes are nested elsewhere so that they are never mistaken for a score."""
    assert triggers.decode_scores(sample().encode()) == pytest.approx(
        {"uncertainty": 0.085, "margin": 0.41, "least_confidence": 0.32, "ood": 1.7})


def test_as_a_sensor_message_it_carries_the_frame_time() -> None:
    msg = sample().to_message("model/scores", "yolox_nano", seq=7)
    back = from_frames([bytes(f) for f in msg.to_frames()])
    assert (back.topic, back.encoding, back.seq, back.sensor_id) == ("model/scores", ENCODING, 7, "yolox_nano")
    assert back.t_sensor_ns == 1_532_402_927_612_460_000
    assert decode_scores(back.payload).frame_seq == 41


def _tampered(**changes: Any) -> bytes:
    body = sample().to_body()
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return wire.pack(SCHEMA, 1, body)


@pytest.mark.parametrize(("payload", "error", "match"), [
    (_tampered(embedding=b"\x00" * 13), MalformedMessage, "embedding has 13 bytes"),
    (_tampered(embedding=b""), MalformedMessage, "embedding has 0 bytes"),
    (_tampered(scores__uncertainty=KeyError), MalformedMessage, "'uncertainty'"),
    (_tampered(scores__ood="high"), MalformedMessage, "scores.ood"),
    (_tampered(frame__t_sensor_ns=1.5), MalformedMessage, "'t_sensor_ns'"),
    (_tampered(detections=[{"box_xyxy_px": [1, 2, 3], "class_id": 2, "class_name": "car", "score": 0.5}]),
     MalformedMessage, "4 numbers"),
    (_tampered(detections=["car"]), MalformedMessage, "a detection is str"),
    (wire.pack(SCHEMA, 2, sample().to_body()), UnknownVersion, "version 2"),
    (wire.pack("avdata.SensorMessage", 1, {}), MalformedMessage, "expected a 'avdata.ModelScores'"),
    (msgpack.packb([1, 2, 3]), MalformedMessage, "expected a map"),
    (b"", ContractError, "empty"),
])
def test_bad_payloads_raise_typed_errors(payload: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        decode_scores(payload)


def test_offline_reference_and_drift_fields_round_trip_and_reach_the_triggers() -> None:
    """``ood_ratio`` and ``drift`` are scores the triggers read; the reference's id, version and
    threshold travel beside the scores, never among them."""
    original = replace(sample(ood=2.5), ood_threshold=2.0, ood_reference_id="0123456789abcdef",
                       ood_reference_version=1, drift_score=1.1)
    body = original.to_body()
    assert body["ood_reference"] == {"id": "0123456789abcdef", "version": 1, "threshold": 2.0}
    got = decode_scores(original.encode())
    assert (got.ood_score, got.ood_threshold, got.ood_reference_id, got.ood_reference_version, got.drift_score) == (
        2.5, 2.0, "0123456789abcdef", 1, 1.1)
    assert got.ood_ratio == 1.25
    assert triggers.decode_scores(original.encode()) == pytest.approx(
        {"uncertainty": 0.085, "margin": 0.41, "least_confidence": 0.32, "ood": 2.5, "ood_ratio": 1.25,
         "drift": 1.1})
    assert sample(ood=None).ood_ratio is None and "drift" not in sample().to_body()["scores"]


@pytest.mark.parametrize(("change", "match"), [
    ({"ood_reference": "abc"}, "ood_reference is str"),
    ({"ood_reference": {"id": "abc", "version": 1}}, "'threshold'"),
    ({"scores": {"uncertainty": 0.1, "margin": 0.1, "least_confidence": 0.1, "drift": "low"}}, "scores.drift"),
])
def test_bad_reference_fields_raise_typed_errors(change: dict[str, Any], match: str) -> None:
    body = {**sample().to_body(), **change}
    with pytest.raises(MalformedMessage, match=match):
        decode_scores(wire.pack(SCHEMA, 1, body))
