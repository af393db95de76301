"""Camera access units (H.265 / H.264 from PyAV) back to BGR frames, one decoder per topic.

A :class:`FrameDecoder` holds a PyAV ``CodecContext`` per topic. It starts a stream only at a
keyframe (which carries the parameter sets), so a subscriber that joins mid-GOP waits instead of
decoding garbage. FFmpeg conceals many bitstream errors by default; the decoder sets
``err_detect`` (``explode`` by default) so a damaged access unit raises instead, and turns every
FFmpeg error into :class:`vehicle.errors.FrameDecodeError`. After an error the topic's codec is
dropped and the stream resumes at its next keyframe; other topics are unaffected.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import av
import numpy as np

from shared.messages import SensorMessage
from vehicle.errors import FrameDecodeError, UnsupportedEncoding

#: Message encoding → FFmpeg decoder name.
CODECS = {"h265": "hevc", "h264": "h264"}


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """One decoded camera frame: ``bgr`` is ``(H, W, 3)`` uint8, times are the sensor's (ns)."""

    topic: str
    seq: int
    t_sensor_ns: int
    bgr: np.ndarray


@dataclass
class _Stream:
    codec: av.VideoCodecContext
    pending: OrderedDict[int, tuple[int, int]] = field(default_factory=OrderedDict)


class FrameDecoder:
    """Decodes each camera topic's access units in order; see the module docstring.

    Counters (plain ints, read them after each call): ``awaiting_keyframe`` access units dropped
    because their stream had not (re)started at a keyframe; ``errors`` access units that raised.
    """

    MAX_PENDING = 64

    def __init__(self, err_detect: str = "explode", threads: int = 1) -> None:
        self.err_detect = err_detect
        self.threads = threads
        self._streams: dict[str, _Stream] = {}
        self.awaiting_keyframe = 0
        self.errors = 0

    def _open(self, encoding: str) -> av.VideoCodecContext:
        codec = av.CodecContext.create(CODECS[encoding], "r")
        assert isinstance(codec, av.VideoCodecContext)
        if self.err_detect:
            codec.options = {"err_detect": self.err_detect}
        codec.thread_count = self.threads
        return codec

    def decode(self, msg: SensorMessage) -> list[DecodedFrame]:
        """Frames completed by this access unit (usually one; none while waiting for a keyframe).

        Raises :class:`UnsupportedEncoding` for a non-video encoding and
        :class:`FrameDecodeError` when FFmpeg rejects the access unit.
        """
        if msg.encoding not in CODECS:
            raise UnsupportedEncoding(f"{msg.topic}: encoding {msg.encoding!r} is not a video codec "
                                      f"this decoder knows ({', '.join(sorted(CODECS))})")
        stream = self._streams.get(msg.topic)
        if stream is None:
            if not msg.keyframe:
                self.awaiting_keyframe += 1
                return []
            stream = self._streams[msg.topic] = _Stream(self._open(msg.encoding))
        packet = av.Packet(bytes(msg.payload))
        packet.pts = msg.seq
        stream.pending[msg.seq] = (msg.seq, msg.t_sensor_ns)
        while len(stream.pending) > self.MAX_PENDING:
            stream.pending.popitem(last=False)
        try:
            frames = stream.codec.decode(packet)
            out = []
            for frame in frames:
                # A decoder with delay hands back earlier AUs' frames: find their times by pts.
                key = frame.pts if frame.pts is not None else msg.seq
                seq, t_ns = stream.pending.pop(key, (msg.seq, msg.t_sensor_ns))
                out.append(DecodedFrame(msg.topic, seq, t_ns, frame.to_ndarray(format="bgr24")))
        except av.FFmpegError as exc:
            self.errors += 1
            del self._streams[msg.topic]
            raise FrameDecodeError(f"{msg.topic}: access unit seq {msg.seq} ({len(msg.payload)} bytes, "
                                   f"keyframe={msg.keyframe}) does not decode: {exc}; "
                                   "waiting for the next keyframe") from exc
        return out

    def reset(self, topic: str) -> None:
        """Forget ``topic``'s decoder state; its stream restarts at the next keyframe."""
        self._streams.pop(topic, None)
