"""Real H.265/H.264 access units (PyAV libx265/libx264, from the KITTI frame) back to BGR frames."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from shared.messages import SensorMessage
from vehicle.errors import FrameDecodeError, UnsupportedEncoding
from vehicle.inference.decode import FrameDecoder

KITTI_IMAGE = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "kitti" / "image_2" / "000000.png"
ENCODERS = {"h265": ("libx265", {"x265-params": "repeat-headers=1:bframes=0:log-level=none",
                                 "preset": "ultrafast", "tune": "zerolatency"}),
            "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"})}


def kitti_bgr() -> np.ndarray:
    with av.open(str(KITTI_IMAGE)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def encode_camera(topic: str, n_frames: int, gop: int, encoding: str = "h265", start_seq: int = 0,
                  t0_ns: int = 1_000_000_000, period_ns: int = 100_000_000) -> list[SensorMessage]:
    """``n_frames`` camera messages: the KITTI frame panning 8 px per frame, a keyframe every ``gop``."""
    name, options = ENCODERS[encoding]
    image = kitti_bgr()
    enc = av.CodecContext.create(name, "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 10), Fraction(10)
    enc.gop_size = gop
    enc.options = {**options, **({"x265-params": options["x265-params"] + f":keyint={gop}:min-keyint={gop}"}
                                 if encoding == "h265" else {})}
    packets = []
    for i in range(n_frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(image, 8 * i, axis=1)), format="bgr24")
        frame.pts = i
        packets += list(enc.encode(frame))
    packets += list(enc.encode(None))
    assert len(packets) == n_frames
    return [SensorMessage(topic=topic, sensor_id="cam0", t_sensor_ns=t0_ns + (start_seq + i) * period_ns,
                          t_recv_ns=0, seq=start_seq + i, encoding=encoding, payload=bytes(p),
                          keyframe=bool(p.is_keyframe)) for i, p in enumerate(packets)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.mark.parametrize("encoding", ["h265", "h264"])
def test_decodes_every_access_unit_to_the_frame_that_was_encoded(encoding: str) -> None:
    msgs = encode_camera("camera/front", 4, gop=2, encoding=encoding)
    assert [m.keyframe for m in msgs] == [True, False, True, False]
    decoder = FrameDecoder()
    image = kitti_bgr()
    for i, msg in enumerate(msgs):
        (frame,) = decoder.decode(msg)
        assert frame.bgr.shape == image.shape and frame.bgr.dtype == np.uint8
        assert (frame.topic, frame.seq, frame.t_sensor_ns) == (msg.topic, msg.seq, msg.t_sensor_ns)
        # Lossy (ultrafast, 4:2:0) at ~28 dB against this very frame; the neighbouring frame, 8 px
        # further along, is ~15 dB away, so a frame out of order or from the wrong AU cannot pass.
        assert psnr(frame.bgr, np.roll(image, 8 * i, axis=1)) > 25.0
        assert psnr(frame.bgr, np.roll(image, 8 * (i + 1), axis=1)) < 20.0
    assert decoder.errors == 0 and decoder.awaiting_keyframe == 0


def test_a_late_subscriber_starts_at_the_next_keyframe() -> None:
    msgs = encode_camera("camera/front", 6, gop=3)
    decoder = FrameDecoder()
    got = [f.seq for m in msgs[1:] for f in decoder.decode(m)]
    assert got == [3, 4, 5]
    assert decoder.awaiting_keyframe == 2  # seq 1 and 2 came before any keyframe


def test_a_corrupt_access_unit_raises_and_the_stream_resumes_at_the_next_keyframe() -> None:
    msgs = encode_camera("camera/front", 6, gop=3)
    noise = np.random.default_rng(0).integers(0, 256, len(msgs[0].payload), dtype=np.uint8).tobytes()
    corrupt = replace(msgs[0], payload=bytes(msgs[0].payload)[:120] + noise[120:])
    decoder = FrameDecoder()
    with pytest.raises(FrameDecodeError, match="camera/front: access unit seq 0") as info:
        decoder.decode(corrupt)
    assert info.value.reason == "decode_failed"
    after = [f.seq for m in msgs[1:] for f in decoder.decode(m)]
    assert after == [3, 4, 5]
    assert decoder.errors == 1 and decoder.awaiting_keyframe == 2


def test_topics_are_decoded_independently() -> None:
    front = encode_camera("camera/front", 2, gop=2)
    left = encode_camera("camera/left", 2, gop=2, encoding="h264")
    decoder = FrameDecoder()
    out = [f.topic for pair in zip(front, left, strict=True) for m in pair for f in decoder.decode(m)]
    assert out == ["camera/front", "camera/left", "camera/front", "camera/left"]
    decoder.reset("camera/front")
    assert decoder.decode(front[1]) == []  # not a keyframe: waits after a reset


def test_an_unknown_encoding_is_a_typed_error() -> None:
    msg = SensorMessage("camera/front", "cam0", 0, 0, 0, "mjpeg", b"\xff\xd8", keyframe=True)
    with pytest.raises(UnsupportedEncoding, match="'mjpeg'") as info:
        FrameDecoder().decode(msg)
    assert isinstance(info.value, FrameDecodeError) and info.value.reason == "unsupported_encoding"


def test_frames_reordered_by_b_frames_keep_their_own_access_unit_times() -> None:
    """With B-frames the decoder returns frames late and in display order; each must still carry
    the seq and sensor time of the access unit that held it (the camera stamps capture times)."""
    image = kitti_bgr()
    enc = av.CodecContext.create("libx265", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 10), Fraction(10)
    enc.options = {"preset": "ultrafast", "x265-params": "repeat-headers=1:bframes=2:b-adapt=0:log-level=none"}
    packets = []
    for i in range(6):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(image, 8 * i, axis=1)), format="bgr24")
        frame.pts = i
        packets += list(enc.encode(frame))
    packets += list(enc.encode(None))
    display = [p.pts or 0 for p in packets]
    assert display != sorted(display), "the encoder should have reordered frames"
    msgs = [SensorMessage("camera/front", "cam0", 1_000 * shown, 0, i, "h265", bytes(p),
                          keyframe=bool(p.is_keyframe)) for i, (p, shown) in enumerate(zip(packets, display, strict=True))]
    decoder = FrameDecoder()
    frames = [f for m in msgs for f in decoder.decode(m)]
    assert len(frames) >= 4  # the last ones may stay in the decoder until more data comes
    assert [f.t_sensor_ns for f in frames] == [1_000 * i for i in range(len(frames))]
    for f in frames:
        assert f.seq == display.index(f.t_sensor_ns // 1_000)
        shown = f.t_sensor_ns // 1_000
        assert psnr(f.bgr, np.roll(image, 8 * shown, axis=1)) > 25.0
