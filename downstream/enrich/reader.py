"""A segment's inputs read from the stores (the I/O edge): :class:`SegmentReader`.

From the raw snapshot(s) the segment's refs name, each message inside its ref's time range:

- ``model/scores`` (``model_scores_v1``, :mod:`shared.model_scores`) → scored frames (detections,
  ``ood_ratio``) and their embeddings;
- GNSS (``gnss_v1``, fixes with ``fix_type`` > 0) → the track for the map and the sun;
- vehicle state (``vehicle_state_v1``) → :class:`~downstream.enrich.records.EgoStates`;
- the first camera topic (``camera/front`` if there is one): the keyframe nearest the segment's
  middle, decoded with PyAV (an H.265/H.264 keyframe carries its parameter sets, so it decodes alone).

From ``processed/``: the motion-compensated sweep nearest the middle in ``calibrated.mcap``. A segment
without a calibration bundle has only sensor-frame sweeps, which the BEV (a vehicle-frame raster)
cannot use: it gets no BEV embedding, and says so. Reads are bounded in time through the MCAP chunk
index, so the keyframe and the sweep cost one chunk each, not the whole channel.

Failures: a missing raw object, or a snapshot that is not valid MCAP, raises
:class:`SnapshotUnreadable`; a record that is absent raises :class:`SegmentNotFound`; malformed
messages are dropped and reported as :class:`Problem`\\ s. A store or DB that fails to answer raises
:class:`BackendUnavailable` (a retry, not the segment's fault).
"""

from __future__ import annotations

import contextlib
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from mcap.exceptions import McapError
from mcap.reader import make_reader

from cloud_ingest.processing.keys import calibrated_key
from cloud_ingest.storage.metadata.protocol import MetadataDB
from cloud_ingest.storage.objects.local import LocalObjectStore
from cloud_ingest.storage.objects.protocol import ObjectStore
from downstream.enrich.bev import lidar_columns
from downstream.enrich.errors import BackendUnavailable, SegmentNotFound, SnapshotUnreadable
from downstream.enrich.inputs import GnssFixes, Keyframe, Problem, SegmentInputs, Sweep, VisualFrames
from downstream.enrich.records import Detected, EgoStates, ScoredFrame
from shared import messages
from shared.errors import ContractError
from shared.messages import SensorMessage
from shared.model_scores import ENCODING as SCORES_ENCODING
from shared.model_scores import decode_scores
from shared.payloads import LIDAR_DTYPE, GnssFix, VehicleState, decode_points, decode_small
from shared.segment import Segment, StreamRef

GNSS_ENCODING = "gnss_v1"
STATE_ENCODING = "vehicle_state_v1"
VIDEO_CODECS = {"h265": "hevc", "h264": "h264"}
#: How far from the middle a keyframe or sweep is first looked for (the chunk index skips the rest).
NEAR_MIDDLE_NS = 2_000_000_000
Msgs = list[tuple[int, SensorMessage]]  # (log_time_ns, message)
_DAMAGED = (McapError, ValueError, EOFError, OSError, KeyError, RuntimeError, struct.error)


def _in(ref: StreamRef, t_ns: int) -> bool:
    return ref.first_ns <= t_ns <= ref.last_ns


class SegmentReader:
    """Reads segments and their inputs from ``db`` and ``store`` (see the module docstring)."""

    def __init__(self, store: ObjectStore, db: MetadataDB | None = None) -> None:
        self.store, self.db = store, db

    # -- the segment record ------------------------------------------------------------------
    def segment(self, segment_id: str, record: bytes | None = None) -> Segment:
        """The segment from its inline ``record`` (an announcement's), else from the metadata DB."""
        if record is None:
            if self.db is None:
                raise SegmentNotFound(f"segment {segment_id}: no record inline and no metadata DB to read it from")
            try:
                row = self.db.get_segment(segment_id)
            except Exception as exc:  # the DB driver's own errors: the DB, not the segment, is at fault
                raise BackendUnavailable(f"metadata DB did not answer for segment {segment_id}: {exc}") from exc
            if row is None:
                raise SegmentNotFound(f"segment {segment_id} is announced but not in the metadata DB; "
                                      "was it ingested into another database?")
            record = row.record
        try:
            return Segment.decode(record)
        except ContractError as exc:
            raise SegmentNotFound(f"segment {segment_id}: its record does not decode: {exc}",
                                  reason="record_malformed") from exc

    def missing_processed(self, seg: Segment) -> list[str]:
        """Keys of the processed objects the segment's sweeps point at that are not written yet."""
        keys = sorted({r.object_key for r in seg.lidar_sweeps if r.object_key.startswith("processed/")})
        return [k for k in keys if not self._exists(k)]

    def _exists(self, key: str) -> bool:
        try:
            return self.store.exists(key)
        except Exception as exc:  # boto3/botocore or OS errors: the store is at fault
            raise BackendUnavailable(f"object store did not answer for {key}: {exc}") from exc

    @contextlib.contextmanager
    def _local(self, key: str) -> Iterator[Path]:
        if not self._exists(key):
            raise SnapshotUnreadable(f"object {key} is missing from the store", reason="object_missing")
        if isinstance(self.store, LocalObjectStore):
            yield self.store.path(key)
            return
        with tempfile.TemporaryDirectory(prefix="avdata-enrich-") as tmp:
            path = Path(tmp) / "object.mcap"
            try:
                path.write_bytes(self.store.read_bytes(key))
            except Exception as exc:
                raise BackendUnavailable(f"object store did not return {key}: {exc}") from exc
            yield path

    # -- the inputs ----------------------------------------------------------------------------
    def read(self, seg: Segment) -> SegmentInputs:
        """Every input of ``seg`` (see the module docstring)."""
        with contextlib.ExitStack() as stack:
            opened: dict[str, Path] = {}

            def local(key: str) -> Path:
                if key not in opened:  # one local copy per object, however many streams it holds
                    opened[key] = stack.enter_context(self._local(key))
                return opened[key]

            return self._read(seg, local)

    def _read(self, seg: Segment, local: Callable[[str], Path]) -> SegmentInputs:
        problems: list[Problem] = []
        mid = (seg.start_ns + seg.end_ns) // 2
        scores = [r for r in seg.other_streams if r.encoding == SCORES_ENCODING]
        gnss = [r for r in seg.other_streams if r.encoding == GNSS_ENCODING]
        cams = sorted((r for r in seg.camera_frames if r.encoding in VIDEO_CODECS),
                      key=lambda r: (not r.topic.endswith("front"), r.topic))
        small = [*scores, *gnss, *seg.vehicle_states]
        got: dict[tuple[str, str], Msgs] = {}
        for key in sorted({r.object_key for r in small}):  # one pass per object: shared chunks decompress once
            got.update(_streams(local(key), [r for r in small if r.object_key == key]))
        frames = [f for ref in scores for f in self._scores(got[ref.object_key, ref.topic], ref, problems)]
        fixes = [f for ref in gnss for f in self._gnss(got[ref.object_key, ref.topic], ref, problems)]
        states = [s for ref in seg.vehicle_states for s in self._states(got[ref.object_key, ref.topic], ref,
                                                                        problems)]
        keyframe = self._keyframe(local, cams[0], mid, problems) if cams else None
        if not cams:
            problems.append(Problem("no_camera", "no H.265/H.264 camera stream: no brightness check"))
        return SegmentInputs(seg, _visual(frames), _ego(states, problems), _fixes(fixes), keyframe,
                             self._sweep(seg, local, mid, problems), None, tuple(problems))

    def _scores(self, msgs: Msgs, ref: StreamRef,
                problems: list[Problem]) -> list[tuple[ScoredFrame, np.ndarray, float, str]]:
        out = []
        for t, msg in msgs:
            try:
                s = decode_scores(msg.payload)
            except ContractError as exc:
                problems.append(Problem("scores_malformed", f"{ref.topic} at {t}: {exc}"))
                continue
            # log time, the vehicle clock of the states and triggers (t_sensor_ns is the camera's)
            frame = ScoredFrame(t, tuple(Detected(d.class_name, d.score, d.box_xyxy_px)
                                                      for d in s.detections), s.ood_ratio)
            out.append((frame, s.embedding, s.uncertainty, s.model_name))
        return out

    def _gnss(self, msgs: Msgs, ref: StreamRef, problems: list[Problem]) -> list[tuple[int, float, float]]:
        out = []
        for t, msg in msgs:
            try:
                fix = decode_small(msg.payload, GnssFix)
            except ContractError as exc:
                problems.append(Problem("gnss_malformed", f"{ref.topic} at {t}: {exc}"))
                continue
            if fix.fix_type > 0 and abs(fix.lat_deg) <= 90.0 and abs(fix.lon_deg) <= 180.0:
                out.append((t, fix.lat_deg, fix.lon_deg))
        return out

    def _states(self, msgs: Msgs, ref: StreamRef, problems: list[Problem]) -> list[tuple[int, VehicleState]]:
        out = []
        for t, msg in msgs:
            try:
                out.append((t, decode_small(msg.payload, VehicleState)))
            except ContractError as exc:
                problems.append(Problem("vehicle_state_malformed", f"{ref.topic} at {t}: {exc}"))
        return out

    def _keyframe(self, local: Callable[[str], Path], ref: StreamRef, mid: int,
                  problems: list[Problem]) -> Keyframe | None:
        path = local(ref.object_key)
        near = [(t, m) for t, m in _messages(path, ref, mid - NEAR_MIDDLE_NS, mid + NEAR_MIDDLE_NS) if m.keyframe]
        if not near:
            near = [(t, m) for t, m in _messages(path, ref) if m.keyframe]
        if not near:
            problems.append(Problem("no_keyframe", f"{ref.topic}: no keyframe in the segment"))
            return None
        t, msg = min(near, key=lambda tm: abs(tm[0] - mid))
        try:
            return Keyframe(t, ref.topic, decode_keyframe(msg.payload, msg.encoding))
        except (av.error.FFmpegError, ValueError) as exc:
            problems.append(Problem("keyframe_undecodable", f"{ref.topic} at {t}: {exc}"))
            return None

    def _sweep(self, seg: Segment, local: Callable[[str], Path], mid: int, problems: list[Problem]) -> Sweep | None:
        own = calibrated_key(seg.segment_id, seg.start_ns)
        refs = [r for r in seg.lidar_sweeps if r.encoding == "lidar_points_v1"]
        compensated = [r for r in refs if r.object_key.startswith("processed/")]
        if not refs:
            problems.append(Problem("no_lidar", "the segment has no LiDAR sweeps: no BEV embedding"))
            return None
        if not compensated:
            problems.append(Problem("no_calibration", "the segment's sweeps are not motion-compensated (no "
                                                      "calibration bundle): no BEV embedding"))
            return None
        ref = min(compensated, key=lambda r: (not _in(r, mid), r.object_key != own, r.topic))
        path = local(ref.object_key)
        near = _messages(path, ref, mid - NEAR_MIDDLE_NS, mid + NEAR_MIDDLE_NS) or _messages(path, ref)
        for t, msg in sorted(near, key=lambda tm: abs(tm[0] - mid)):
            try:
                points = lidar_columns(decode_points(msg.payload, LIDAR_DTYPE))
            except ContractError as exc:
                problems.append(Problem("lidar_malformed", f"{ref.topic} at {t}: {exc}"))
                continue
            if points.shape[0]:
                return Sweep(t, ref.topic, ref.object_key, points)
        problems.append(Problem("no_lidar", f"{ref.topic}: no decodable non-empty sweep near the middle"))
        return None


def _read_mcap(path: Path, refs: list[StreamRef], lo_ns: int, hi_ns: int) -> Msgs:
    key = refs[0].object_key
    try:
        with open(path, "rb") as fh:
            reader = make_reader(fh, validate_crcs=True)
            return [(rec.log_time, messages.from_record(rec.data)) for _, _, rec in reader.iter_messages(
                topics=sorted({r.topic for r in refs}), starting_at=lo_ns, ending_before=hi_ns)]
    except ContractError as exc:
        raise SnapshotUnreadable(f"{key}: a record is not a sensor message: {exc}") from exc
    except _DAMAGED as exc:
        raise SnapshotUnreadable(f"{key}: not a readable MCAP snapshot ({type(exc).__name__}: {exc}); "
                                 "the object is damaged, re-ingest its upload") from exc


def _messages(path: Path, ref: StreamRef, lo_ns: int | None = None,
              hi_ns: int | None = None) -> Msgs:
    """``(log_time_ns, message)`` of ``ref``'s topic in ``path`` within ``ref``'s range (and
    ``[lo_ns, hi_ns)``), read through the chunk index with CRCs checked."""
    lo = ref.first_ns if lo_ns is None else max(lo_ns, ref.first_ns)
    hi = ref.last_ns + 1 if hi_ns is None else min(hi_ns, ref.last_ns + 1)
    return _read_mcap(path, [ref], lo, hi) if hi > lo else []


def _streams(path: Path, refs: list[StreamRef]) -> dict[tuple[str, str], Msgs]:
    """Each ref's messages (within its range) from one pass over ``path``: ``(object_key, topic) -> list``."""
    out: dict[tuple[str, str], Msgs] = {(r.object_key, r.topic): [] for r in refs}
    by_topic = {r.topic: r for r in refs}
    for t, msg in _read_mcap(path, refs, min(r.first_ns for r in refs), max(r.last_ns for r in refs) + 1):
        ref = by_topic.get(msg.topic)
        if ref is not None and _in(ref, t):
            out[ref.object_key, ref.topic].append((t, msg))
    return out


def decode_keyframe(payload: bytes | memoryview, encoding: str) -> np.ndarray:
    """An H.265/H.264 keyframe access unit decoded alone: ``(H, W, 3)`` uint8 RGB."""
    if encoding not in VIDEO_CODECS:
        raise ValueError(f"encoding {encoding!r} is not a video codec ({', '.join(sorted(VIDEO_CODECS))})")
    codec: Any = av.CodecContext.create(VIDEO_CODECS[encoding], "r")
    frames = list(codec.decode(av.Packet(bytes(payload)))) + list(codec.decode(None))
    if not frames:
        raise ValueError("the access unit decoded to no frame")
    return np.asarray(frames[0].to_ndarray(format="rgb24"), dtype=np.uint8)


def _visual(frames: list[tuple[ScoredFrame, np.ndarray, float, str]]) -> VisualFrames | None:
    if not frames:
        return None
    frames.sort(key=lambda f: f[0].t_ns)
    dims = {f[1].shape for f in frames}
    if len(dims) != 1:  # two models with different widths: keep the most frequent width
        common = max(dims, key=lambda d: sum(f[1].shape == d for f in frames))
        frames = [f for f in frames if f[1].shape == common]
    return VisualFrames(tuple(f[0] for f in frames), np.stack([f[1] for f in frames]).astype(np.float32),
                        np.asarray([f[2] for f in frames], dtype=np.float64), tuple(sorted({f[3] for f in frames})))


def _ego(states: list[tuple[int, VehicleState]], problems: list[Problem]) -> EgoStates | None:
    if not states:
        problems.append(Problem("no_vehicle_state", "no vehicle-state stream: no hard brakes or speed profile"))
        return None
    ego = EgoStates.from_states([t for t, _ in states], [s for _, s in states])
    return ego if ego.t_ns.size else None


def _fixes(fixes: list[tuple[int, float, float]]) -> GnssFixes | None:
    if not fixes:
        return None
    fixes.sort()
    a = np.asarray(fixes, dtype=np.float64)
    return GnssFixes(np.asarray([f[0] for f in fixes], dtype=np.int64), a[:, 1], a[:, 2])
