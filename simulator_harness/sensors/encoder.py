"""H.265 encoding with PyAV (libx265), tuned for a live sensor stream.

``preset=ultrafast`` and ``tune=zerolatency`` give one access unit out per frame in, no B-frames,
a closed GOP of ``keyint`` frames starting with an IDR picture, and ``repeat-headers`` so every
keyframe carries its VPS/SPS/PPS: any keyframe can start a clip that decodes on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from simulator_harness.errors import EncoderError

#: HEVC NAL unit types (ITU-T H.265 table 7-1) this module refers to.
NAL_IDR_W_RADL, NAL_IDR_N_LP, NAL_VPS, NAL_SPS, NAL_PPS = 19, 20, 32, 33, 34


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded picture in Annex B byte-stream form, its presentation index and keyframe flag."""

    payload: bytes
    pts: int
    keyframe: bool


def nal_unit_types(payload: bytes | memoryview) -> list[int]:
    """The NAL unit types in an Annex B HEVC payload, in order."""
    data = bytes(payload)
    types: list[int] = []
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 3:
        types.append((data[i + 3] >> 1) & 0x3F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


class H265Encoder:
    """Encodes I420 frames of a fixed size into H.265 access units, one per frame.

    ``threads`` bounds x265's worker pool, so the camera fits the demo's CPU budget.
    """

    def __init__(self, width_px: int, height_px: int, fps: int = 30, keyint: int = 30,
                 threads: int = 1) -> None:
        if keyint < 1 or fps < 1 or threads < 1:
            raise EncoderError(f"fps, keyint and threads must be >= 1 (got {fps}, {keyint}, {threads})")
        self.width_px, self.height_px, self.keyint = width_px, height_px, keyint
        params = ":".join([
            f"keyint={keyint}", f"min-keyint={keyint}", "bframes=0", "scenecut=0", "open-gop=0",
            "repeat-headers=1", "log-level=error", f"pools={threads}", "frame-threads=1",
        ])
        try:
            ctx = av.CodecContext.create("libx265", "w")
            ctx.width, ctx.height = width_px, height_px
            ctx.pix_fmt = "yuv420p"
            ctx.time_base = Fraction(1, fps)
            ctx.framerate = Fraction(fps, 1)
            ctx.gop_size = keyint
            ctx.max_b_frames = 0
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x265-params": params}
            ctx.open()
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"cannot open libx265 at {width_px}x{height_px}: {exc}") from exc
        self._ctx = ctx
        self._next_pts = 0

    def encode(self, frame_i420: npt.NDArray[np.uint8]) -> list[AccessUnit]:
        """Encode one ``(height * 3 // 2, width)`` I420 frame; returns the units it produced."""
        expected = (self.height_px * 3 // 2, self.width_px)
        if frame_i420.shape != expected or frame_i420.dtype != np.uint8:
            raise EncoderError(
                f"frame has shape {frame_i420.shape} {frame_i420.dtype}, expected {expected} uint8"
            )
        frame = av.VideoFrame.from_ndarray(frame_i420, format="yuv420p")
        frame.pts = self._next_pts
        self._next_pts += 1
        return self._units(frame)

    def flush(self) -> list[AccessUnit]:
        """Drain the encoder (zerolatency normally holds nothing back)."""
        return self._units(None)

    def _units(self, frame: av.VideoFrame | None) -> list[AccessUnit]:
        try:
            packets = self._ctx.encode(frame)
        except av.FFmpegError as exc:
            raise EncoderError(f"libx265 rejected frame {self._next_pts - 1}: {exc}") from exc
        return [AccessUnit(bytes(p), int(p.pts or 0), bool(p.is_keyframe)) for p in packets]
