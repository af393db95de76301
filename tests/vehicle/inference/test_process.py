"""The inference process end to end: real H.265 over real ZeroMQ sockets in, model/scores out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from shared.config import ConfigError, load
from shared.messages import SensorMessage, from_frames
from shared.model_scores import ModelScores
from shared.triggers import TriggerKind
from shared.yolox import iou_one_to_many
from vehicle.config.recorder import TopicsConfig, TriggerConfig
from vehicle.errors import OodReferenceMismatch
from vehicle.inference.decode import DecodedFrame
from vehicle.inference.loop import load_checked_reference
from vehicle.inference.model import Detector, DetectorConfig
from vehicle.inference.process import (
    FrameScheduler,
    InferenceMetrics,
    InferenceProcessConfig,
    decode_scores,
    run_inference_process,
)
from vehicle.inference.reference import save_reference
from vehicle.triggers.rules import TriggerEngine

from .conftest import FittedReference
from .domains import NUSCENES, h265_messages, images
from .test_decode import encode_camera

KITTI_PEDESTRIAN = np.array([712.40, 143.00, 810.73, 307.92], dtype=np.float32)  # label_2/000000.txt
GOP = 3
SCORED = "avdata_vehicle_inference_frames_scored_total"
SKIPPED = "avdata_vehicle_inference_frames_skipped_total"
ERRORS = "avdata_vehicle_inference_errors_total"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectorConfig(provider="cpu"))


@pytest.fixture(scope="module")
def gop() -> list[SensorMessage]:
    """One H.265 GOP of the KITTI frame (keyframe + 2 P-frames), re-stamped for each use."""
    return encode_camera("camera/front", GOP, gop=GOP)


def free_tcp_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Rig:
    """A sensor XPUB feeding the process, a SUB reading its scores, and the process in a thread."""

    sensor: zmq.Socket[bytes]
    scores: zmq.Socket[bytes]
    metrics: InferenceMetrics
    gop: list[SensorMessage]
    next_seq: int = 0

    def send_gop(self, n: int = GOP) -> list[SensorMessage]:
        sent = [replace(m, seq=self.next_seq + i, t_sensor_ns=1_000_000_000 + (self.next_seq + i) * 100_000_000)
                for i, m in enumerate(self.gop[:n])]
        self.next_seq += GOP
        for m in sent:
            self.sensor.send_multipart(m.to_frames())
        return sent

    def receive(self, timeout_s: float) -> list[ModelScores]:
        out, deadline = [], time.monotonic() + timeout_s
        while self.scores.poll(max(1, int(1000 * (deadline - time.monotonic())))):
            msg = from_frames(self.scores.recv_multipart())
            assert (msg.topic, msg.encoding) == ("model/scores", "model_scores_v1")
            scores = decode_scores(msg.payload)
            assert msg.t_sensor_ns == scores.t_sensor_ns
            out.append(scores)
            if time.monotonic() >= deadline:
                break
        return out

    def until_scored(self, count: int, timeout_s: float = 30.0) -> list[ModelScores]:
        """Send GOPs until ``count`` scores came back (the SUB may join after the first ones)."""
        got: list[ModelScores] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            self.send_gop()
            got += self.receive(0.5)
        assert len(got) >= count, f"only {len(got)} scores in {timeout_s} s"
        return got

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.value(name, labels)


RigFactory = Callable[..., Rig]


@pytest.fixture
def rig_factory(detector: Detector, gop: list[SensorMessage]) -> Iterator[RigFactory]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def make(**overrides: Any) -> Rig:
        sensor = ctx.socket(zmq.XPUB)
        sensor.setsockopt(zmq.LINGER, 0)
        port = sensor.bind_to_random_port("tcp://127.0.0.1")
        pub_ep = free_tcp_endpoint()
        scores = ctx.socket(zmq.SUB)
        scores.setsockopt(zmq.LINGER, 0)
        scores.setsockopt(zmq.SUBSCRIBE, b"model/scores")
        scores.connect(pub_ep)
        cfg = InferenceProcessConfig(sub_endpoints=(f"tcp://127.0.0.1:{port}",), pub_endpoint=pub_ep,
                                     **overrides)
        metrics, stop = InferenceMetrics(), threading.Event()
        thread = threading.Thread(target=run_inference_process, args=(cfg, stop, metrics, detector), daemon=True)
        thread.start()
        stops.append((stop, thread))
        assert sensor.poll(10_000), "the inference process never subscribed"
        assert sensor.recv() == b"\x01camera/"
        return Rig(sensor, scores, metrics, gop)

    yield make
    for stop, thread in stops:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
    ctx.destroy(linger=0)


def test_scores_real_h265_frames_over_zeromq(rig_factory: RigFactory) -> None:
    rig = rig_factory(max_rate_hz=0.0, drift_min_reference=2, drift_every=1, drift_refit_every=1)
    got = rig.until_scored(6)
    for s in got:
        assert s.source_topic == "camera/front" and s.model_name == "yolox_nano"
        assert s.t_sensor_ns == 1_000_000_000 + s.frame_seq * 100_000_000  # the frame's own time
        assert (s.image_w_px, s.image_h_px) == (1224, 370)
        assert s.embedding.shape == (512,) and float(np.linalg.norm(s.embedding)) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= s.uncertainty <= 0.3  # a clear scene (noise scores ~0.4-0.5)
        # The frame pans 8 px per frame within its GOP; the pedestrian is found where that frame put him.
        shifted = KITTI_PEDESTRIAN + np.array([8, 0, 8, 0], np.float32) * (s.frame_seq % GOP)
        people = np.array([d.box_xyxy_px for d in s.detections if d.class_name == "person"], np.float32)
        assert people.size and float(iou_one_to_many(shifted, people).max()) >= 0.5, s.detections
    # The drift window holds 2 embeddings after the first 2 scored frames; every later frame has a score
    # (the SUB may have joined late, so only the first 2 received may lack one).
    assert all(s.drift_score is not None and np.isfinite(s.drift_score) and s.drift_score >= 0.0 for s in got[2:])
    # No [inference] ood_reference: the running window is never passed off as an OOD score.
    assert all(s.ood_score is None and s.ood_reference_id is None for s in got)
    assert rig.value(SCORED, topic="camera/front") >= len(got)


def test_bad_input_is_counted_and_the_stream_goes_on(rig_factory: RigFactory) -> None:
    rig = rig_factory(max_rate_hz=0.0)
    rig.until_scored(1)
    good = rig.gop[0]
    rig.sensor.send_multipart([b"camera/front", b"\x81"])  # two frames: truncated
    rig.sensor.send_multipart(replace(good, encoding="mjpeg").to_frames())
    noise = np.random.default_rng(0).integers(0, 256, len(good.payload), dtype=np.uint8).tobytes()
    rig.sensor.send_multipart(replace(good, seq=10_000, payload=bytes(good.payload)[:120] + noise[120:]).to_frames())
    after = rig.until_scored(2)
    assert all(s.frame_seq > 0 for s in after)
    assert rig.value(ERRORS, stage="contract", reason="truncated") == 1
    assert rig.value(ERRORS, stage="decode", reason="unsupported_encoding") == 1
    assert rig.value(ERRORS, stage="decode", reason="decode_failed") == 1


def test_frames_beyond_the_rate_are_skipped_and_counted(rig_factory: RigFactory) -> None:
    """At 2 Hz, a burst of 3 GOPs (9 frames, sent at once) gets at most 2 frames scored within the
    following 0.9 s, the newest among them; every other decoded frame is counted as skipped."""
    rig = rig_factory(max_rate_hz=2.0)
    rig.until_scored(1)
    time.sleep(0.6)
    rig.receive(0.1)
    scored0 = rig.value(SCORED, topic="camera/front")
    skipped0 = sum(rig.value(SKIPPED, topic="camera/front", reason=r) for r in ("rate_limit", "behind"))
    for _ in range(3):
        rig.send_gop()
    got = rig.receive(0.9)
    scored = rig.value(SCORED, topic="camera/front") - scored0
    skipped = sum(rig.value(SKIPPED, topic="camera/front", reason=r) for r in ("rate_limit", "behind")) - skipped0
    assert 1 <= len(got) == scored <= 2
    assert scored + skipped == 9
    assert got[-1].frame_seq == rig.next_seq - 1  # the newest frame is the one scored


def test_scheduler_scores_the_newest_frame_per_topic_at_the_rate() -> None:
    """Pure scheduling, with explicit times: a frame replaced before its topic is due is skipped
    for ``rate_limit``; one replaced while due (the loop did not get to it) is skipped as ``behind``."""
    metrics = InferenceMetrics()
    sched = FrameScheduler(min_interval_s=0.5, metrics=metrics)

    def frame(topic: str, seq: int) -> DecodedFrame:
        return DecodedFrame(topic, seq, seq, np.zeros((2, 2, 3), np.uint8))

    sched.offer(frame("camera/front", 0), now_s=10.0)
    sched.offer(frame("camera/front", 1), now_s=10.0)  # due, but not scored yet: behind
    sched.offer(frame("camera/left", 0), now_s=10.0)
    assert [(f.topic, f.seq) for f in sched.take_due(10.0)] == [("camera/front", 1), ("camera/left", 0)]
    sched.offer(frame("camera/front", 2), now_s=10.1)
    sched.offer(frame("camera/front", 3), now_s=10.2)  # not due until 10.5: rate limit
    assert sched.take_due(10.4) == []
    assert sched.wait_s(10.4, idle_s=1.0) == pytest.approx(0.1)
    assert [f.seq for f in sched.take_due(10.5)] == [3]
    assert sched.wait_s(10.5, idle_s=1.0) == 1.0
    label = {"topic": "camera/front"}
    assert metrics.value(SKIPPED, {**label, "reason": "behind"}) == 1
    assert metrics.value(SKIPPED, {**label, "reason": "rate_limit"}) == 1


def test_config_names_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "inference.toml"
    path.write_text('max_rate_hz = -1.0\n')
    with pytest.raises(ConfigError, match="max_rate_hz must be >= 0"):
        load(InferenceProcessConfig, path)
    path.write_text('[model]\nprovider = "tpu"\n')
    with pytest.raises(ConfigError, match=r"\[model\] provider must be auto, cpu or cuda"):
        load(InferenceProcessConfig, path)
    path.write_text('[model]\nthreads = 2\n')
    with pytest.raises(ConfigError, match=r"'model\.threads'"):
        load(InferenceProcessConfig, path)


def test_main_runs_as_a_process_until_sigterm(tmp_path: Path) -> None:
    """``python -m vehicle.inference.process`` sends READY=1 on a real NOTIFY_SOCKET, stops on SIGTERM with
    STOPPING=1 and exit code 0; a bad configuration exits 2 naming the key."""
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    config = tmp_path / "inference.toml"
    config.write_text(f'sub_endpoints = ["{free_tcp_endpoint()}"]\npub_endpoint = "{free_tcp_endpoint()}"\n'
                      'log_level = "warning"\n')
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    proc = subprocess.Popen([sys.executable, "-m", "vehicle.inference.process", "--config", str(config)], env=env,
                            stderr=subprocess.PIPE)
    try:
        assert listener.recv(4096).startswith(b"READY=1")
        proc.send_signal(signal.SIGTERM)
        messages = []
        while b"STOPPING=1" not in messages:
            messages.append(listener.recv(4096))
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    config.write_text('max_rate_hz = "fast"\n')
    bad = subprocess.run([sys.executable, "-m", "vehicle.inference.process", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "max_rate_hz: expected a number" in bad.stderr


def test_published_ood_against_the_fitted_reference_fires_the_ood_trigger(
        rig_factory: RigFactory, kitti_reference: FittedReference) -> None:
    """With ``ood_reference`` set, every score carries ``ood`` and ``ood_ratio`` against the file and
    names it; a KITTI frame (never in the fit) stays below the threshold, nuScenes frames on
    another camera go above it, and the recorder's ``ood`` trigger on ``ood_ratio >= 1`` fires on
    exactly those."""
    ref = kitti_reference.reference
    rig = rig_factory(max_rate_hz=0.0, ood_reference=kitti_reference.path)
    nuscenes = h265_messages([bgr for _, bgr in images(NUSCENES)], "camera/back", gop=6, size=(1600, 900))
    engine = TriggerEngine({"ood": TriggerConfig(kind="ood", score_key="ood_ratio", threshold=1.0,
                                                 min_duration_s=0.0, cooldown_s=0.0)}, TopicsConfig())
    got: dict[str, list[ModelScores]] = {"camera/front": [], "camera/back": []}
    fired: dict[str, int] = {"camera/front": 0, "camera/back": 0}
    deadline = time.monotonic() + 60
    while min(len(v) for v in got.values()) < 3 and time.monotonic() < deadline:
        rig.send_gop()
        for m in nuscenes:
            rig.sensor.send_multipart(m.to_frames())
        end = time.monotonic() + 1.0
        while rig.scores.poll(max(1, int(1000 * (end - time.monotonic())))):
            msg = from_frames(rig.scores.recv_multipart())
            scores = decode_scores(msg.payload)
            got[scores.source_topic].append(scores)
            events = engine.observe(msg.t_sensor_ns, msg.topic, msg.payload)
            fired[scores.source_topic] += len(events)
            assert all(e.kind is TriggerKind.OOD and e.scores["ood_ratio"] >= 1.0 for e in events)
    assert min(len(v) for v in got.values()) >= 3, {k: len(v) for k, v in got.items()}
    for s in got["camera/front"] + got["camera/back"]:
        assert (s.ood_reference_id, s.ood_reference_version) == (ref.reference_id, 1)
        assert s.ood_threshold == ref.threshold.value and s.ood_score is not None
        assert s.ood_ratio == pytest.approx(s.ood_score / ref.threshold.value)
    front = [s.ood_score for s in got["camera/front"] if s.ood_score is not None]
    back = [s.ood_score for s in got["camera/back"] if s.ood_score is not None]
    assert max(front) < ref.threshold.value < min(back), (front, back)
    # A rule fires once per episode; the two cameras share it, so back-to-back nuScenes scores fire once.
    assert fired["camera/front"] == 0 and fired["camera/back"] >= 1


def test_a_reference_of_another_embedding_stops_the_start(
        tmp_path: Path, detector: Detector, kitti_reference: FittedReference) -> None:
    """A reference whose recorded embedding differs from the detector's is refused before any socket
    opens: typed in-process, exit code 2 with a one-line reason from the real process."""
    ref = kitti_reference.reference
    other = tmp_path / "seed5.avood"
    save_reference(replace(ref, spec=replace(ref.spec, projection_seed=5)), other)
    cfg = InferenceProcessConfig(ood_reference=other)
    with pytest.raises(OodReferenceMismatch, match="projection_seed 5 != 0"):
        load_checked_reference(cfg, detector)
    assert load_checked_reference(replace(cfg, ood_reference=kitti_reference.path), detector) is not None
    config = tmp_path / "inference.toml"
    config.write_text(f'ood_reference = "{other}"\nsub_endpoints = ["{free_tcp_endpoint()}"]\n'
                      f'pub_endpoint = "{free_tcp_endpoint()}"\nlog_level = "warning"\n')
    done = subprocess.run([sys.executable, "-m", "vehicle.inference.process", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "seed5.avood was fitted with" in done.stderr and "refit it with `avdata-vehicle ood fit`" in done.stderr
