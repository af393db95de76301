"""On-vehicle inference throughput on ONNX Runtime's CPU provider, beside the bare model.

A real camera frame (nuScenes CAM_FRONT, 1600×900) panning 8 px per frame is encoded once with
libx265 (GOP 10, no B-frames); then, in the same run and with the same thread count:

* ``inference_decode_detect``: frames/s of :class:`FrameDecoder` (H.265 access unit → BGR) plus
  :meth:`Detector.detect` (letterbox, ``session.run`` with the feature outputs, YOLOX decoding,
  class-wise NMS, uncertainty, 512-d embedding);
* ``inference_detect``: the same without the video decoding;
* the limit for both: bare ``session.run`` of the unmodified model on an already preprocessed
  ``[1, 3, 416, 416]`` tensor, the most this model can do on this CPU.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from shared.yolox import letterbox
from vehicle.inference.decode import FrameDecoder
from vehicle.inference.model import MODELS_DIR, Detector, DetectorConfig

FRAME = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real" / "nuscenes"
         / "n015-2018-07-24-11-22-45+0800__CAM_FRONT__1532402927612460.jpg")


def _camera_messages(n: int) -> list[SensorMessage]:
    with av.open(str(FRAME)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="bgr24")
    enc = av.CodecContext.create("libx265", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 10), Fraction(10)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x265-params": "repeat-headers=1:bframes=0:keyint=10:min-keyint=10:log-level=none"}
    packets = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(image, 8 * i, axis=1)), format="bgr24")
        frame.pts = i
        packets += list(enc.encode(frame))
    packets += list(enc.encode(None))
    return [SensorMessage("camera/front", "cam_front", i * 100_000_000, 0, i, "h265", bytes(p),
                          keyframe=bool(p.is_keyframe)) for i, p in enumerate(packets)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def run(quick: bool = False, threads: int = 1) -> list[Figure]:
    n = 6 if quick else 60
    msgs = _camera_messages(n)
    detector = Detector(DetectorConfig(provider="cpu", intra_op_threads=threads))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    bare = ort.InferenceSession(str(MODELS_DIR / "yolox_nano.onnx"), sess_options=options,
                                providers=["CPUExecutionProvider"])
    bgr = FrameDecoder().decode(msgs[0])[0].bgr
    tensor, _ = letterbox(bgr, 416)
    for _ in range(2):  # warm both sessions up (allocations, thread pools)
        bare.run(None, {"images": tensor})
        detector.detect(bgr)

    t0 = time.perf_counter()
    for _ in range(n):
        bare.run(None, {"images": tensor})
    bare_fps = _rate(n, time.perf_counter() - t0)

    decoder = FrameDecoder()
    t0 = time.perf_counter()
    scored = 0
    for msg in msgs:
        for frame in decoder.decode(msg):
            detector.detect(frame.bgr)
            scored += 1
    pipeline_fps = _rate(scored, time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(n):
        detector.detect(bgr)
    detect_fps = _rate(n, time.perf_counter() - t0)

    note = f"{bgr.shape[1]}x{bgr.shape[0]} H.265, {threads} ORT thread(s), {detector.provider}"
    limit_name = "bare session.run, preprocessed tensor"
    return [
        Figure("inference_decode_detect", pipeline_fps, "frames/s", bare_fps, limit_name, note=note),
        Figure("inference_detect", detect_fps, "frames/s", bare_fps, limit_name, note=note),
    ]


if __name__ == "__main__":
    main_for(run)
