"""The ``avdata.ModelScores`` contract: what the inference process publishes on ``model/scores``.

Each scored frame travels as a :class:`shared.messages.SensorMessage` (topic ``model/scores``,
encoding ``model_scores_v1``, ``t_sensor_ns`` of the camera frame it scores) whose payload is the
versioned msgpack envelope ``wire.pack("avdata.ModelScores", 1, body)`` with::

    frame:      {topic: str, seq: int, t_sensor_ns: int, w_px: int, h_px: int}
    model:      {name: str, provider: str, inference_ns: int}
    scores:     {uncertainty, margin, least_confidence: float in [0, 1],
                 ood: float >= 0, per-dimension distance to the offline reference,
                 ood_ratio: float >= 0, ood / the reference's threshold (>= 1: out of distribution),
                 drift: float >= 0, per-dimension distance to the running window of recent frames}
    ood_reference: {id: str, version: int, threshold: float}   the reference file behind ood
    detections: [{box_xyxy_px: [x1, y1, x2, y2] (float, px), class_id: int, class_name: str,
                  score: float}], best first
    embedding:  bytes, little-endian float32 × dim (dim = len / 4; 512 for the bundled model)

``ood``, ``ood_ratio`` and ``ood_reference`` are present only when the process runs with an
``[inference] ood_reference`` (:mod:`vehicle.inference.reference`; ``id`` is the first 16 hex
digits of that file's sha256, ``version`` its format version). ``drift`` is present once the
drift monitor (:mod:`vehicle.inference.drift`) holds enough frames; it watches for change and is
no OOD score. Before the offline reference existed, ``ood`` was the running window's distance;
such recordings carry no ``ood_reference``, which is how a reader tells the two apart.

Only ``scores`` holds numbers at the top of its map, so a consumer that reads "every numeric
score" (``vehicle.triggers.rules.decode_scores``) sees exactly the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared import wire
from shared.errors import MalformedMessage
from shared.messages import SensorMessage


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: corner box in original-image pixels, COCO class, score in [0, 1]."""

    box_xyxy_px: tuple[float, float, float, float]
    class_id: int
    class_name: str
    score: float


SCHEMA = "avdata.ModelScores"
VERSION = 1
VERSIONS = frozenset({1})
ENCODING = "model_scores_v1"
MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, eq=False)
class ModelScores:
    """One frame's scores as published.

    ``ood_score``, ``ood_threshold``, ``ood_reference_id`` and ``ood_reference_version`` are ``None``
    without an offline reference; ``drift_score`` is ``None`` until the drift monitor is ready.
    """

    source_topic: str
    frame_seq: int
    t_sensor_ns: int
    image_w_px: int
    image_h_px: int
    model_name: str
    provider: str
    inference_ns: int
    uncertainty: float
    margin: float
    least_confidence: float
    ood_score: float | None
    detections: tuple[Detection, ...]
    embedding: np.ndarray
    ood_threshold: float | None = None
    ood_reference_id: str | None = None
    ood_reference_version: int | None = None
    drift_score: float | None = None

    @property
    def ood_ratio(self) -> float | None:
        """``ood_score / ood_threshold``: at or above 1 the frame is out of distribution."""
        if self.ood_score is None or not self.ood_threshold:
            return None
        return self.ood_score / self.ood_threshold

    def to_body(self) -> dict[str, Any]:
        """The envelope body (see the module docstring)."""
        scores = {"uncertainty": self.uncertainty, "margin": self.margin,
                  "least_confidence": self.least_confidence}
        if self.ood_score is not None:
            scores["ood"] = self.ood_score
        if self.ood_ratio is not None:
            scores["ood_ratio"] = self.ood_ratio
        if self.drift_score is not None:
            scores["drift"] = self.drift_score
        emb = np.ascontiguousarray(self.embedding, dtype="<f4")
        body: dict[str, Any] = {
            "frame": {"topic": self.source_topic, "seq": self.frame_seq, "t_sensor_ns": self.t_sensor_ns,
                      "w_px": self.image_w_px, "h_px": self.image_h_px},
            "model": {"name": self.model_name, "provider": self.provider, "inference_ns": self.inference_ns},
            "scores": scores,
            "detections": [{"box_xyxy_px": list(d.box_xyxy_px), "class_id": d.class_id,
                            "class_name": d.class_name, "score": d.score} for d in self.detections],
            "embedding": emb.tobytes(),
        }
        if self.ood_reference_id is not None:
            body["ood_reference"] = {"id": self.ood_reference_id, "version": self.ood_reference_version,
                                     "threshold": self.ood_threshold}
        return body

    def encode(self) -> bytes:
        """The versioned msgpack envelope."""
        return wire.pack(SCHEMA, VERSION, self.to_body())

    def to_message(self, topic: str, sensor_id: str, seq: int) -> SensorMessage:
        """A :class:`SensorMessage` carrying these scores, stamped with the frame's sensor time."""
        return SensorMessage(topic=topic, sensor_id=sensor_id, t_sensor_ns=self.t_sensor_ns, t_recv_ns=0,
                             seq=seq, encoding=ENCODING, payload=self.encode())


def _map(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = wire.field(body, name, dict, SCHEMA)
    assert isinstance(value, dict)
    return value


def _detection(item: Any) -> Detection:
    if not isinstance(item, dict):
        raise MalformedMessage(f"{SCHEMA}: a detection is {type(item).__name__}, expected a map")
    box = wire.field(item, "box_xyxy_px", list, SCHEMA)
    if len(box) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box):
        raise MalformedMessage(f"{SCHEMA}: box_xyxy_px must be 4 numbers, got {box!r}")
    return Detection(box_xyxy_px=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                     class_id=wire.field(item, "class_id", int, SCHEMA),
                     class_name=wire.field(item, "class_name", str, SCHEMA),
                     score=wire.field(item, "score", float, SCHEMA))


def decode_scores(payload: bytes | memoryview) -> ModelScores:
    """Decode a ``model/scores`` payload; raises a :class:`shared.errors.ContractError` subclass."""
    _, body = wire.unpack(bytes(payload), SCHEMA, VERSIONS, max_bytes=MAX_BYTES)
    f = wire.field
    frame, model, scores = _map(body, "frame"), _map(body, "model"), _map(body, "scores")
    raw = f(body, "embedding", bytes, SCHEMA)
    if not raw or len(raw) % 4:
        raise MalformedMessage(f"{SCHEMA}: embedding has {len(raw)} bytes, expected a positive multiple of 4")
    ood, drift = _optional_number(scores, "ood"), _optional_number(scores, "drift")
    ref = body.get("ood_reference")
    ref_id, ref_version, threshold = None, None, None
    if ref is not None:
        if not isinstance(ref, dict):
            raise MalformedMessage(f"{SCHEMA}: ood_reference is {type(ref).__name__}, expected a map")
        ref_id, ref_version = f(ref, "id", str, SCHEMA), f(ref, "version", int, SCHEMA)
        threshold = f(ref, "threshold", float, SCHEMA)
    detections = f(body, "detections", list, SCHEMA)
    return ModelScores(
        source_topic=f(frame, "topic", str, SCHEMA), frame_seq=f(frame, "seq", int, SCHEMA),
        t_sensor_ns=f(frame, "t_sensor_ns", int, SCHEMA), image_w_px=f(frame, "w_px", int, SCHEMA),
        image_h_px=f(frame, "h_px", int, SCHEMA), model_name=f(model, "name", str, SCHEMA),
        provider=f(model, "provider", str, SCHEMA), inference_ns=f(model, "inference_ns", int, SCHEMA),
        uncertainty=f(scores, "uncertainty", float, SCHEMA), margin=f(scores, "margin", float, SCHEMA),
        least_confidence=f(scores, "least_confidence", float, SCHEMA),
        ood_score=ood, detections=tuple(_detection(d) for d in detections),
        embedding=np.frombuffer(raw, dtype="<f4").astype(np.float32),
        ood_threshold=threshold, ood_reference_id=ref_id, ood_reference_version=ref_version, drift_score=drift,
    )


def _optional_number(scores: dict[str, Any], name: str) -> float | None:
    value = scores.get(name)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise MalformedMessage(f"{SCHEMA}: scores.{name} is {type(value).__name__}, expected a number")
    return None if value is None else float(value)
