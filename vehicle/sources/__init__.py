"""The sensor edge: the ZeroMQ receiver, sequence-gap accounting and per-sensor time sync.
"""

from vehicle.sources.receiver import Receiver, SteadyClock
from vehicle.sources.sequence_gaps import (
    MAX_HEADER_BYTES,
    NO_LOSS,
    SequenceGaps,
    StreamLoss,
    peek_stream,
)
from vehicle.sources.timesync import (
    NS,
    ClockFit,
    SyncVerdict,
    TimeSync,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "NO_LOSS",
    "NS",
    "ClockFit",
    "Receiver",
    "SequenceGaps",
    "SteadyClock",
    "StreamLoss",
    "SyncVerdict",
    "TimeSync",
    "peek_stream",
]
