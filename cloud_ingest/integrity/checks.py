"""Integrity checks on an upload, before anything is stored.

:class:`SnapshotScanner` is fed the upload's bytes as they arrive (the daemon feeds it from each
PATCH body) and parses them with :class:`cloud_ingest.integrity.mcap_stream.McapStream`: chunk CRCs,
attachment and summary CRCs, the embedded manifest, and per-channel log times and keyframe flags
*in file order*; so when the last byte lands only the footer is left to check.
:func:`scan_snapshot` runs the same scanner over a file on disk. :func:`check_scan` and
:func:`check_sha256` are pure.
Every failure is an :class:`IntegrityFailure` whose ``reason`` is a stable machine-readable label.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

from cloud_ingest.errors import ChecksumMismatch, IntegrityFailure
from cloud_ingest.integrity.mcap_stream import McapFormatError, McapStream
from shared import messages
from shared.errors import ContractError
from shared.manifest import SnapshotManifest
from shared.payloads import GnssFix, decode_small
from shared.snapshot import MANIFEST_ATTACHMENT

VIDEO_ENCODINGS = frozenset({"h265", "h264"})
GNSS_ENCODING = "gnss_v1"


@dataclass(frozen=True, slots=True)
class ChannelScan:
    """What one channel holds: ``times_ns`` (int64, file order) and ``keyframes`` (bool, same shape)."""

    topic: str
    sensor_id: str
    encoding: str
    times_ns: npt.NDArray[np.int64]
    keyframes: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class GnssTrack:
    """Valid GNSS fixes of a snapshot (``fix_type`` > 0): ``t_ns`` (n,) int64, ``latlon_deg`` (n, 2)."""

    t_ns: npt.NDArray[np.int64]
    latlon_deg: npt.NDArray[np.float64]


EMPTY_TRACK = GnssTrack(np.zeros(0, np.int64), np.zeros((0, 2), np.float64))


@dataclass(frozen=True, slots=True)
class SnapshotScan:
    """The embedded manifest, what the file actually contains channel by channel, and its GNSS track."""

    manifest: SnapshotManifest
    channels: dict[str, ChannelScan]
    gnss: GnssTrack = EMPTY_TRACK


def _gnss_fix(payload: bytes | memoryview) -> tuple[float, float] | None:
    """(lat, lon) of a usable fix; a bad GNSS payload only loses that fix (it is map context)."""
    try:
        fix = decode_small(payload, GnssFix)
    except ContractError:
        return None
    if fix.fix_type <= 0 or not (-90.0 <= fix.lat_deg <= 90.0 and -180.0 <= fix.lon_deg <= 180.0):
        return None
    return fix.lat_deg, fix.lon_deg


def check_sha256(actual_hex: str, declared_hex: str) -> None:
    """The whole file's hash must equal the one declared in the upload metadata (else tus 460)."""
    if not hmac.compare_digest(actual_hex.lower(), declared_hex.lower()):
        raise ChecksumMismatch(f"file sha256 {actual_hex} does not match the declared {declared_hex}")


class _ScanBuilder:
    """:class:`McapHandler` that collects what :class:`SnapshotScan` holds, message by message."""

    def __init__(self) -> None:
        self.topics: dict[int, str] = {}
        self.times: dict[str, list[int]] = {}
        self.keys: dict[str, list[bool]] = {}
        self.meta: dict[str, tuple[str, str]] = {}
        self.fixes: list[tuple[int, float, float]] = []
        self.manifest_bytes: bytes | None = None

    def channel(self, channel_id: int, topic: str) -> None:
        self.topics[channel_id] = topic

    def message(self, channel_id: int, log_time_ns: int, data: memoryview) -> None:
        topic = self.topics.get(channel_id)
        if topic is None:
            raise McapFormatError(f"a message names channel {channel_id}, which was never defined")
        try:
            msg = messages.from_record(cast(bytes, data))
        except ContractError as exc:
            raise IntegrityFailure(f"snapshot unreadable: {exc}", reason=exc.reason) from exc
        if msg.topic != topic:
            raise IntegrityFailure(f"a message on channel {topic!r} says topic {msg.topic!r}",
                                   reason="topic_mismatch")
        self.times.setdefault(topic, []).append(log_time_ns)
        self.keys.setdefault(topic, []).append(msg.keyframe)
        self.meta.setdefault(topic, (msg.sensor_id, msg.encoding))
        if msg.encoding == GNSS_ENCODING and (fix := _gnss_fix(msg.payload)) is not None:
            self.fixes.append((log_time_ns, *fix))

    def attachment(self, name: str, data: memoryview) -> None:
        if name == MANIFEST_ATTACHMENT:
            self.manifest_bytes = bytes(data)

    def result(self) -> SnapshotScan:
        if self.manifest_bytes is None:
            raise McapFormatError(f"snapshot has no {MANIFEST_ATTACHMENT} attachment")
        try:
            manifest = SnapshotManifest.decode(self.manifest_bytes)
        except ContractError as exc:
            raise IntegrityFailure(f"snapshot unreadable: {exc}", reason=exc.reason) from exc
        channels = {
            t: ChannelScan(t, self.meta[t][0], self.meta[t][1], np.asarray(self.times[t], dtype=np.int64),
                           np.asarray(self.keys[t], dtype=bool))
            for t in self.times
        }
        fixes = sorted(self.fixes)
        track = GnssTrack(np.asarray([f[0] for f in fixes], np.int64),
                          np.asarray([f[1:] for f in fixes], np.float64).reshape(-1, 2)) if fixes else EMPTY_TRACK
        return SnapshotScan(manifest, channels, track)


class SnapshotScanner:
    """The integrity scan of one upload, fed its bytes in order as they arrive.

    ``feed`` never raises: the first failure is kept (and the rest of the bytes ignored) until
    :meth:`finish`, which raises it as an :class:`IntegrityFailure` or returns the scan. ``offset``
    is how many bytes have been fed.
    """

    def __init__(self) -> None:
        self._builder = _ScanBuilder()
        self._stream = McapStream(self._builder)
        self.offset = 0
        self.failure: IntegrityFailure | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self.offset += len(data)
        if self.failure is None:
            try:
                self._stream.feed(data)
            except IntegrityFailure as exc:
                self.failure = exc

    def finish(self) -> SnapshotScan:
        if self.failure is None:
            try:
                self._stream.finish()
                return self._builder.result()
            except IntegrityFailure as exc:
                self.failure = exc
        raise self.failure


def scan_snapshot(path: Path, block_bytes: int = 4 * 1024 * 1024) -> SnapshotScan:
    """Read ``path`` once through :class:`SnapshotScanner`; raise :class:`IntegrityFailure`."""
    scanner = SnapshotScanner()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(block_bytes):
                scanner.feed(block)
    except OSError as exc:
        raise IntegrityFailure(f"snapshot unreadable: {exc}", reason="mcap_invalid") from exc
    return scanner.finish()


def check_scan(scan: SnapshotScan, *, vehicle_id: str) -> None:
    """Check the file against its manifest and its uploader; raise :class:`IntegrityFailure`."""
    m = scan.manifest
    if m.vehicle_id != vehicle_id:
        raise IntegrityFailure(f"manifest vehicle_id {m.vehicle_id!r} is not the uploading vehicle "
                               f"{vehicle_id!r}", reason="vehicle_mismatch")
    if m.end_ns < m.start_ns:
        raise IntegrityFailure(f"manifest window ends ({m.end_ns}) before it starts ({m.start_ns})",
                               reason="manifest_window_invalid")
    declared = {c.topic for c in m.channels}
    present = set(scan.channels)
    if declared != present:
        raise IntegrityFailure(f"manifest channels {sorted(declared)} but file has {sorted(present)}",
                               reason="manifest_channels_mismatch")
    for c in m.channels:
        got = scan.channels[c.topic]
        if got.times_ns.size != c.count:
            raise IntegrityFailure(f"{c.topic}: manifest says {c.count} messages, file has "
                                   f"{got.times_ns.size}", reason="manifest_count_mismatch")
        if got.times_ns.size and np.any(np.diff(got.times_ns) < 0):
            i = int(np.argmax(np.diff(got.times_ns) < 0))
            raise IntegrityFailure(f"{c.topic}: log time goes back at message {i + 1} "
                                   f"({got.times_ns[i]} then {got.times_ns[i + 1]})",
                                   reason="timestamps_out_of_order")
        first, last = int(got.times_ns.min()), int(got.times_ns.max())
        if (first, last) != (c.first_ns, c.last_ns):
            raise IntegrityFailure(f"{c.topic}: manifest time range [{c.first_ns}, {c.last_ns}] but file "
                                   f"has [{first}, {last}]", reason="manifest_time_mismatch")
    if not scan.channels:
        raise IntegrityFailure("snapshot holds no messages", reason="empty_snapshot")
