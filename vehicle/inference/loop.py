"""The inference loop: camera topics in over ZeroMQ, ``model/scores`` out.

:func:`run_inference_process` subscribes to the camera topics, decodes every access unit (a video
decoder must see them all), keeps only each topic's newest frame, and scores it with the detector
at most ``max_rate_hz`` times a second per topic. A frame replaced by a newer one before it was
scored is skipped and counted (``rate_limit`` when the topic was not yet due, ``behind`` when the
model could not keep up). Each scored frame is published as a
:class:`shared.messages.SensorMessage` on ``scores_topic`` (see :mod:`shared.model_scores`).
Bad messages and undecodable frames are counted by reason and never stop the loop. The process
around it (signals, systemd, ``/metrics``) is :mod:`vehicle.inference.process`.

Two distances go with each frame: ``ood`` against the reference file fitted offline
(``[inference] ood_reference``, loaded once and checked against the detector's embedding before
the sockets open, so a mismatched file stops the start with a typed error), and ``drift``
against the running window of recent frames (:class:`vehicle.inference.drift.DriftMonitor`).
"""

from __future__ import annotations

import logging
import threading
import time

import zmq
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.errors import ContractError
from shared.messages import from_frames
from shared.model_scores import ModelScores
from shared.sdnotify import Notifier
from vehicle.config.inference import InferenceProcessConfig
from vehicle.errors import InferenceError
from vehicle.inference.decode import DecodedFrame, FrameDecoder
from vehicle.inference.drift import DriftMonitor
from vehicle.inference.model import Detector
from vehicle.inference.reference import OodReference, load_reference

__all__ = ["FrameScheduler", "InferenceMetrics", "load_checked_reference", "run_inference_process"]

log = logging.getLogger(__name__)


class InferenceMetrics:
    """Prometheus counters of one inference process, on the registry it is given (no globals)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        p, r = "avdata_vehicle_inference_", self.registry
        self.scored = Counter(p + "frames_scored", "Frames scored, by camera topic", ["topic"], registry=r)
        self.skipped = Counter(p + "frames_skipped", "Decoded frames not scored, by topic and reason",
                               ["topic", "reason"], registry=r)
        self.errors = Counter(p + "errors", "Messages or frames rejected, by stage and reason",
                              ["stage", "reason"], registry=r)
        self.seconds = Histogram(p + "seconds", "Preprocess + model + postprocess time per frame",
                                 registry=r, buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0))

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of an exported sample, e.g. ``..._frames_scored_total``; 0 if absent."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else got


class FrameScheduler:
    """Holds the newest decoded frame per topic and says when each topic may be scored next.

    A frame replaced before it was taken is counted as skipped: ``rate_limit`` when its topic was
    not yet due, ``behind`` when it was due but the loop had not got to it (model busy, or a burst).
    """

    def __init__(self, min_interval_s: float, metrics: InferenceMetrics) -> None:
        self.min_interval_s = min_interval_s
        self.metrics = metrics
        self.waiting: dict[str, DecodedFrame] = {}
        self.next_due_s: dict[str, float] = {}

    def offer(self, frame: DecodedFrame, now_s: float) -> None:
        """Make ``frame`` its topic's candidate (monotonic seconds ``now_s``)."""
        if frame.topic in self.waiting:
            due = now_s >= self.next_due_s.get(frame.topic, 0.0)
            self.metrics.skipped.labels(topic=frame.topic, reason="behind" if due else "rate_limit").inc()
        self.waiting[frame.topic] = frame

    def take_due(self, now_s: float) -> list[DecodedFrame]:
        """The candidates whose topic is due; each topic's next slot starts now."""
        due = [f for t, f in self.waiting.items() if now_s >= self.next_due_s.get(t, 0.0)]
        for f in due:
            del self.waiting[f.topic]
            self.next_due_s[f.topic] = now_s + self.min_interval_s
        return due

    def wait_s(self, now_s: float, idle_s: float) -> float:
        """Seconds until the next candidate is due, ``idle_s`` when none waits."""
        if not self.waiting:
            return idle_s
        return max(0.0, min(self.next_due_s.get(t, 0.0) for t in self.waiting) - now_s)


def _score(detector: Detector, reference: OodReference | None, drift: DriftMonitor, frame: DecodedFrame,
           n_scored: int, cfg: InferenceProcessConfig) -> ModelScores:
    result = detector.detect(frame.bgr)
    drift_score = drift.score(result.embedding) if drift.ready else None
    if n_scored % cfg.drift_every == 0:
        drift.add(result.embedding)
    unc = result.uncertainty
    return ModelScores(
        source_topic=frame.topic, frame_seq=frame.seq, t_sensor_ns=frame.t_sensor_ns,
        image_w_px=result.image_w_px, image_h_px=result.image_h_px, model_name=cfg.sensor_id,
        provider=detector.provider, inference_ns=result.inference_ns, uncertainty=unc.entropy,
        margin=unc.margin, least_confidence=unc.least_confidence,
        ood_score=None if reference is None else reference.score(result.embedding),
        detections=result.detections, embedding=result.embedding,
        ood_threshold=None if reference is None else reference.threshold.value,
        ood_reference_id=None if reference is None else reference.reference_id,
        ood_reference_version=None if reference is None else reference.version, drift_score=drift_score)


def load_checked_reference(cfg: InferenceProcessConfig, detector: Detector) -> OodReference | None:
    """The configured OOD reference, checked against ``detector``; ``None`` when none is configured.

    Raises :class:`vehicle.errors.OodReferenceError` subclasses (unreadable, unknown version,
    fitted with another model or embedding).
    """
    if cfg.ood_reference is None:
        log.warning("no [inference] ood_reference: scores carry no ood; fit one with `avdata-vehicle ood fit`")
        return None
    reference = load_reference(cfg.ood_reference)
    reference.check(detector.embedding_spec, str(cfg.ood_reference))
    log.info("ood reference loaded", extra={"path": str(cfg.ood_reference), "id": reference.reference_id,
                                            "threshold": reference.threshold.value,
                                            "frames": len(reference.fit.frame_ids)})
    return reference


def run_inference_process(
    cfg: InferenceProcessConfig, stop: threading.Event, metrics: InferenceMetrics | None = None,
    detector: Detector | None = None, on_ready: Notifier | None = None,
) -> InferenceMetrics:
    """Score camera frames until ``stop`` is set; returns the metrics it counted into."""
    metrics = metrics or InferenceMetrics()
    detector = detector or Detector(cfg.model)
    reference = load_checked_reference(cfg, detector)
    drift = DriftMonitor(cfg.drift_capacity, cfg.drift_min_reference, cfg.drift_refit_every)
    decoder = FrameDecoder(cfg.decoder_err_detect)
    sched = FrameScheduler(1.0 / cfg.max_rate_hz if cfg.max_rate_hz else 0.0, metrics)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    try:
        for sock in (sub, pub):
            sock.setsockopt(zmq.LINGER, 0)
        for topic in cfg.camera_topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        for ep in cfg.sub_endpoints:
            sub.connect(ep)
        pub.bind(cfg.pub_endpoint)
        if on_ready is not None:
            on_ready.ready("scoring camera frames")
        log.info("inference ready", extra={"provider": detector.provider, "sub": cfg.sub_endpoints,
                                           "pub": cfg.pub_endpoint})
        n_scored, last_ping_s = 0, 0.0
        ping_every_s = min(1.0, (on_ready.watchdog_interval_s() if on_ready else None) or 1.0)
        while not stop.is_set():
            timeout_ms = int(1000 * sched.wait_s(time.monotonic(), idle_s=0.1))
            if sub.poll(timeout_ms, zmq.POLLIN):
                _drain(sub, decoder, sched, metrics, cfg.max_payload_bytes)
            for frame in sched.take_due(time.monotonic()):
                try:
                    scores = _score(detector, reference, drift, frame, n_scored, cfg)
                except InferenceError as exc:
                    metrics.errors.labels(stage="model", reason=exc.reason).inc()
                    log.warning("frame not scored", extra={"topic": frame.topic, "error": str(exc)})
                    continue
                pub.send_multipart(scores.to_message(cfg.scores_topic, cfg.sensor_id, n_scored).to_frames())
                n_scored += 1
                metrics.scored.labels(topic=frame.topic).inc()
                metrics.seconds.observe(scores.inference_ns / 1e9)
            if on_ready is not None and time.monotonic() - last_ping_s >= ping_every_s:
                on_ready.watchdog()
                last_ping_s = time.monotonic()
    finally:
        sub.close()
        pub.close()
        ctx.term()
    return metrics


def _drain(sub: zmq.Socket[bytes], decoder: FrameDecoder, sched: FrameScheduler, metrics: InferenceMetrics,
           max_payload_bytes: int, max_messages: int = 1000) -> None:
    """Decode every message already queued (bounded, so scoring is never starved)."""
    for _ in range(max_messages):
        try:
            frames = sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            msg = from_frames(frames, max_payload_bytes)
        except ContractError as exc:
            metrics.errors.labels(stage="contract", reason=exc.reason).inc()
            continue
        waited = decoder.awaiting_keyframe
        try:
            decoded = decoder.decode(msg)
        except InferenceError as exc:
            metrics.errors.labels(stage="decode", reason=exc.reason).inc()
            log.warning("camera frame not decoded", extra={"topic": msg.topic, "error": str(exc)})
            continue
        if decoder.awaiting_keyframe > waited:
            metrics.skipped.labels(topic=msg.topic, reason="awaiting_keyframe").inc()
        now = time.monotonic()
        for frame in decoded:
            sched.offer(frame, now)
