"""The rolling in-memory buffer of every topic, bounded by age and by bytes.
"""

from vehicle.buffer.ring_buffer import (
    VIDEO_ENCODINGS,
    RingBuffer,
    is_video,
)

__all__ = [
    "VIDEO_ENCODINGS",
    "RingBuffer",
    "is_video",
]
