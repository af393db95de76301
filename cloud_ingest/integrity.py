"""Integrity checks on a complete upload, before anything is stored.

:func:`scan_snapshot` is the I/O edge: it opens the MCAP with chunk-CRC validation (through
:class:`shared.snapshot.SnapshotReader`), reads the embedded manifest and collects per-channel
log times and keyframe flags *in file order*. :func:`check_scan` and :func:`check_sha256` are pure.
Every failure is an :class:`IntegrityFailure` whose ``reason`` is a stable machine-readable label.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from mcap.exceptions import McapError
from mcap.reader import make_reader

from cloud_ingest.errors import ChecksumMismatch, IntegrityFailure
from shared import messages
from shared.errors import ContractError, SnapshotError
from shared.manifest import SnapshotManifest
from shared.payloads import GnssFix, decode_small
from shared.snapshot import SnapshotReader

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


def scan_snapshot(path: Path) -> SnapshotScan:
    """Read ``path`` once, validating CRCs and decoding every record; raise :class:`IntegrityFailure`."""
    try:
        with SnapshotReader(path) as reader:
            manifest = reader.manifest
        times: dict[str, list[int]] = {}
        keys: dict[str, list[bool]] = {}
        meta: dict[str, tuple[str, str]] = {}
        fixes: list[tuple[int, float, float]] = []
        with open(path, "rb") as fh:
            mcap = make_reader(fh, validate_crcs=True)
            for _schema, channel, rec in mcap.iter_messages(log_time_order=False):
                msg = messages.from_record(rec.data)
                if msg.topic != channel.topic:
                    raise IntegrityFailure(f"a message on channel {channel.topic!r} says topic {msg.topic!r}",
                                           reason="topic_mismatch")
                times.setdefault(msg.topic, []).append(rec.log_time)
                keys.setdefault(msg.topic, []).append(msg.keyframe)
                meta.setdefault(msg.topic, (msg.sensor_id, msg.encoding))
                if msg.encoding == GNSS_ENCODING and (fix := _gnss_fix(msg.payload)) is not None:
                    fixes.append((rec.log_time, *fix))
    except ContractError as exc:  # a broken container is "mcap_invalid"; a broken record keeps its reason
        reason = "mcap_invalid" if isinstance(exc, SnapshotError) else exc.reason
        raise IntegrityFailure(f"snapshot unreadable: {exc}", reason=reason) from exc
    except (McapError, ValueError, EOFError, OSError, KeyError, RuntimeError) as exc:  # lz4: RuntimeError
        raise IntegrityFailure(f"snapshot unreadable: {exc}", reason="mcap_invalid") from exc
    channels = {
        t: ChannelScan(t, meta[t][0], meta[t][1], np.asarray(times[t], dtype=np.int64),
                       np.asarray(keys[t], dtype=bool))
        for t in times
    }
    fixes.sort()
    track = GnssTrack(np.asarray([f[0] for f in fixes], np.int64),
                      np.asarray([f[1:] for f in fixes], np.float64).reshape(-1, 2)) if fixes else EMPTY_TRACK
    return SnapshotScan(manifest, channels, track)


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
