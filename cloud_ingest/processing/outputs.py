"""Write a segment's calibrated LiDAR and radar streams into its processed folder (the I/O edge).

For a segment whose refs point at ``processed/{date}/{segment}/calibrated.mcap`` (see
:func:`cloud_ingest.processing.calibrate.with_calibrated_refs`), :func:`write_calibrated` reads the
raw snapshot, builds the ego track (:mod:`cloud_ingest.processing.ego_motion`) from its ``pose_v1``
stream when it has one with a usable pose (6-DoF: position, roll, pitch, yaw), else from its
vehicle-state stream (planar: z = 0, yaw only), and writes:

- ``calibrated.mcap``: the snapshot format (:class:`shared.snapshot.SnapshotReader` reads it),
  one channel per calibrated stream with the raw topic, sensor id and encoding. LiDAR points are in
  the vehicle frame at the sweep's time (motion-compensated; other fields as recorded); radar
  returns keep their radar-frame geometry and carry the radial speed over ground in
  ``doppler_mps``. log_time is the measurement time on the vehicle clock (raw log_time plus the
  bundle's temporal offset), publish_time the sensor's own time, as recorded.
- ``calibrated.json``: the calibration version, the ego motion used (``ego_motion.model``:
  ``6dof_pose``, ``planar_vehicle_state`` or null; its source topic, sample counts and malformed
  samples), and per stream its frame, offset, message count, malformed messages and points clamped
  to the ego track.

Both are write-once; the pass counts as done when both exist, so a retry converges. A malformed
message becomes an empty one (0 points), so counts always match the refs, and is reported through
``on_bad`` (a metrics hook) and the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cloud_ingest.calibration.checks import sensor_pose
from cloud_ingest.errors import GeometryError, IngestError, ObjectExists
from cloud_ingest.processing.calibrate import (
    calibrated_refs,
    compensate_sweep,
    correct_returns,
    offset_ns,
    pose_refs,
)
from cloud_ingest.processing.ego_motion import DIFF_NS, EXTRAPOLATE_NS, EgoTrack
from cloud_ingest.processing.keys import CALIBRATED_OBJECT, calibrated_key, report_key
from cloud_ingest.storage.objects.local import LocalObjectStore
from cloud_ingest.storage.objects.protocol import ObjectStore
from shared.calibration import CalibrationBundle
from shared.errors import ContractError
from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, VehiclePose, VehicleState, decode_points, decode_small
from shared.segment import Segment, StreamRef
from shared.snapshot import SnapshotReader, SnapshotWriter

log = logging.getLogger(__name__)
BUILDER = "avdata.cloud_ingest.processing/2"
BadHook = Callable[[str], None]


def needs_calibrated(seg: Segment) -> bool:
    """Whether ``seg`` has streams stored in its own calibrated object."""
    key = calibrated_key(seg.segment_id, seg.start_ns)
    return any(r.object_key == key for r in seg.lidar_sweeps + seg.radar_returns)


@contextlib.contextmanager
def _local_copy(store: ObjectStore, key: str) -> Iterator[Path]:
    if isinstance(store, LocalObjectStore):
        yield store.path(key)
        return
    with tempfile.TemporaryDirectory(prefix="avdata-raw-") as tmp:
        path = Path(tmp) / "snapshot.mcap"
        path.write_bytes(store.read_bytes(key))
        yield path


def _decode_stream(reader: SnapshotReader, topic: str, cls: type[Any], shift_ns: int, on_bad: BadHook,
                   reason: str) -> tuple[list[int], list[Any], int]:
    """Times (vehicle clock), decoded samples and the count of malformed ones of one small-payload topic."""
    times, samples, bad = [], [], 0
    for log_time, msg in reader.messages([topic]):
        try:
            samples.append(decode_small(msg.payload, cls))
            times.append(log_time + shift_ns)
        except ContractError:
            bad += 1
            on_bad(reason)
    return times, samples, bad


def _ego_track(reader: SnapshotReader, seg: Segment, bundle: CalibrationBundle, raw_key: str,
               on_bad: BadHook) -> tuple[EgoTrack | None, dict[str, Any]]:
    """The 6-DoF track of the first pose stream in the snapshot, else the planar one of the first
    vehicle-state stream, else ``None``; and what the report says about it."""
    doc: dict[str, Any] = {"model": None, "extrapolate_ns": EXTRAPOLATE_NS}
    pose = next((r for r in sorted(pose_refs(seg), key=lambda r: r.topic) if r.object_key == raw_key), None)
    if pose is not None:
        shift = offset_ns(bundle, pose.sensor_id)
        times, poses, bad = _decode_stream(reader, pose.topic, VehiclePose, shift, on_bad, "pose_malformed")
        doc.update(pose_topic=pose.topic, poses=len(poses), bad_poses=bad)
        try:
            track = EgoTrack.from_poses(times, poses)
        except GeometryError:
            doc["pose_unusable"] = "the pose stream holds no decodable pose"
        else:
            doc.update(model=track.model, source_topic=pose.topic, time_offset_ns=shift, diff_ns=DIFF_NS)
            return track, doc
    refs = sorted(seg.vehicle_states, key=lambda r: r.topic)
    ref = next((r for r in refs if r.object_key == raw_key), None)
    if ref is None:
        doc.update(source_topic=None, states=0, bad_states=0)
        if pose is not None:
            on_bad("no_ego_motion")
        return None, doc
    shift = offset_ns(bundle, ref.sensor_id)
    times, states, bad = _decode_stream(reader, ref.topic, VehicleState, shift, on_bad, "vehicle_state_malformed")
    doc.update(source_topic=ref.topic, states=len(states), bad_states=bad, time_offset_ns=shift)
    try:
        track = EgoTrack.from_states(times, states)
    except GeometryError:
        on_bad("no_ego_motion")
        return None, doc
    doc["model"] = track.model
    return track, doc


def _calibrate_message(payload: bytes | memoryview, lidar: bool, t_ns: int, track: EgoTrack | None,
                       vehicle_T_sensor: Any, poses: Any, stats: dict[str, Any], on_bad: BadHook,
                       xp: Any) -> bytes:
    try:
        data = decode_points(payload, LIDAR_DTYPE if lidar else RADAR_DTYPE)
    except ContractError:
        stats["bad_messages"] += 1
        on_bad("lidar_malformed" if lidar else "radar_malformed")
        return b""
    if lidar:
        points, clamped = compensate_sweep(data, t_ns, poses, vehicle_T_sensor, xp=xp)
        stats["clamped_points"] += clamped
        return points.tobytes()
    if track is None:
        return data.tobytes()
    velocity, angular = track.motion_at(t_ns)
    return correct_returns(data, vehicle_T_sensor, velocity, angular).tobytes()


def _put_once(store: ObjectStore, key: str, *, path: Path | None = None, data: bytes = b"") -> None:
    with contextlib.suppress(ObjectExists):  # another attempt or daemon wrote it: already there
        if path is not None:
            store.put_file(key, path, move=True)
        else:
            store.put_bytes(key, data)


def _stats(cal: StreamRef, bundle: CalibrationBundle, track: EgoTrack | None) -> dict[str, Any]:
    lidar = cal.encoding == "lidar_points_v1"
    return {"topic": cal.topic, "sensor_id": cal.sensor_id, "kind": "lidar" if lidar else "radar",
            "frame": "vehicle at message time" if lidar else "radar",
            "time_offset_ns": offset_ns(bundle, cal.sensor_id), "messages": 0, "bad_messages": 0,
            "clamped_points": 0, "ego_motion_applied": track is not None,
            "ego_model": track.model if track is not None else None}


def _write_mcap(reader: SnapshotReader, writer: SnapshotWriter, seg: Segment, bundle: CalibrationBundle,
                pairs: list[tuple[StreamRef, StreamRef]], track: EgoTrack | None,
                on_bad: BadHook, xp: Any) -> dict[str, dict[str, Any]]:
    """Calibrate every message of the calibrated streams' pieces into ``writer``; per-topic stats."""
    by_topic = {cal.topic: (cal, raw) for cal, raw in pairs}
    stats = {t: _stats(cal, bundle, track) for t, (cal, _) in by_topic.items()}
    extrinsics = {t: sensor_pose(bundle, cal.sensor_id) for t, (cal, _) in by_topic.items()}
    poses = track.poses() if track is not None else None
    for log_time, msg in reader.messages(sorted(by_topic)):
        raw = by_topic[msg.topic][1]
        if not raw.first_ns <= log_time <= raw.last_ns:
            continue  # another segment's piece of the snapshot
        st = stats[msg.topic]
        t_ns = log_time + st["time_offset_ns"]
        payload = _calibrate_message(msg.payload, st["kind"] == "lidar", t_ns, track, extrinsics[msg.topic],
                                     poses, st, on_bad, xp)
        writer.add(dataclasses.replace(msg, payload=payload), t_ns)
        st["messages"] += 1
    for cal, _ in pairs:
        if stats[cal.topic]["messages"] != cal.count:
            raise IngestError(f"segment {seg.segment_id}: raw snapshot holds {stats[cal.topic]['messages']} "
                              f"{cal.topic!r} messages in the segment, the ref says {cal.count}",
                              reason="calibrated_count_mismatch")
    writer.finish(snapshot_id=seg.segment_id, vehicle_id=seg.vehicle_id, created_ns=seg.provenance.built_ns,
                  start_ns=seg.start_ns, end_ns=seg.end_ns, triggers=(), software_version=BUILDER,
                  model_version="", calibration_version=bundle.version)
    return stats


def write_calibrated(store: ObjectStore, seg: Segment, on_bad: BadHook = lambda reason: None, *,
                     xp: Any = np) -> bool:
    """Write ``seg``'s calibrated outputs unless they exist; ``False`` when it has none to write.

    LiDAR compensation runs on the array module ``xp`` (NumPy; CuPy from
    :func:`cloud_ingest.calibration.geometry.array_module` on a GPU machine).

    Raises :class:`IngestError` (or a :class:`shared.errors.ContractError`) when the raw snapshot is
    missing, unreadable or disagrees with the refs; nothing partial is left under the key.
    """
    key, rkey = calibrated_key(seg.segment_id, seg.start_ns), report_key(seg.segment_id, seg.start_ns)
    pairs = calibrated_refs(seg, key)
    if not pairs:
        return False
    if store.exists(key) and store.exists(rkey):
        return True
    bundle = seg.calibration
    raw_keys = sorted({raw.object_key for _, raw in pairs})
    if bundle is None or len(raw_keys) != 1:
        raise IngestError(f"segment {seg.segment_id}: calibrated streams need one raw snapshot and a bundle, "
                          f"got {raw_keys}", reason="calibrated_refs")
    with _local_copy(store, raw_keys[0]) as src, SnapshotReader(src) as reader, \
            tempfile.TemporaryDirectory(prefix="avdata-calibrated-") as tmp:
        track, ego = _ego_track(reader, seg, bundle, raw_keys[0], on_bad)
        writer = SnapshotWriter(Path(tmp) / CALIBRATED_OBJECT)
        try:
            stats = _write_mcap(reader, writer, seg, bundle, pairs, track, on_bad, xp)
        except BaseException:
            writer.abort()
            raise
        _put_once(store, key, path=writer.path)
    report = {"segment_id": seg.segment_id, "object_key": key, "raw_key": raw_keys[0],
              "calibration_version": bundle.version, "builder": BUILDER, "ego_motion": ego,
              "streams": [stats[t] for t in sorted(stats)]}
    _put_once(store, rkey, data=json.dumps(report, indent=1, sort_keys=True).encode())
    log.info("calibrated streams written", extra={"segment_id": seg.segment_id, "object_key": key})
    return True
