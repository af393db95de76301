"""Frames to fit an out-of-distribution reference from: image files, or a snapshot's camera channels.

- :func:`image_paths` / :func:`read_image`: the JPEG and PNG files of a directory (not recursive),
  in name order, decoded by FFmpeg (PyAV) to BGR; the frame id is the file name.
- :func:`snapshot_frames`: the H.265 / H.264 camera channels of an MCAP snapshot
  (:class:`shared.snapshot.SnapshotReader`), decoded with the inference process's own
  :class:`vehicle.inference.decode.FrameDecoder`, so the fit sees frames exactly as the car does;
  the frame id is ``<file name>:<topic>:<seq>``. Consecutive video frames are nearly the same
  image, so ``every`` keeps every n-th decoded frame of a topic (the decoder still sees every
  access unit).
- :func:`views`: a frame and the extra views the fit may take of it (``augment``): ``flip`` adds
  its mirror image, ``flip_crops`` also four corner crops of 85 % of each side and their mirrors
  (10 views). Views add samples for the covariance, never frames: all views of a frame share its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from shared.errors import ContractError
from shared.snapshot import SnapshotReader
from vehicle.config.inference import OOD_AUGMENTATIONS
from vehicle.errors import FrameDecodeError, FrameSourceError
from vehicle.inference.decode import CODECS, FrameDecoder

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
#: Side of a corner crop as a fraction of the frame's side.
CROP_FRACTION = 0.85
#: ``augment`` names and the number of views each gives per frame.
AUGMENTATIONS = OOD_AUGMENTATIONS


@dataclass(frozen=True, eq=False)
class SourceFrame:
    """One frame for a fit: ``bgr`` is ``(H, W, 3)`` uint8."""

    frame_id: str
    bgr: np.ndarray


def views(bgr: np.ndarray, augment: str) -> list[np.ndarray]:
    """``bgr`` ``(H, W, 3)`` first, then the extra views ``augment`` asks for (see the module docstring)."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
    out = [bgr]
    if augment in ("flip", "flip_crops"):
        out.append(bgr[:, ::-1])
    if augment == "flip_crops":
        h, w = bgr.shape[:2]
        ch, cw = int(h * CROP_FRACTION), int(w * CROP_FRACTION)
        for y0, x0 in ((0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)):
            crop = bgr[y0:y0 + ch, x0:x0 + cw]
            out += [crop, crop[:, ::-1]]
    return [np.ascontiguousarray(v) for v in out]


def image_paths(directory: Path) -> list[Path]:
    """The JPEG/PNG files directly inside ``directory``, by name; raises :class:`FrameSourceError`."""
    if not directory.is_dir():
        raise FrameSourceError(f"{directory}: not a directory of frames")
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FrameSourceError(f"{directory}: no .jpg, .jpeg or .png files")
    return paths


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to ``(H, W, 3)`` uint8 BGR; raises :class:`FrameSourceError`."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="bgr24")
    except (av.FFmpegError, StopIteration, OSError) as exc:
        raise FrameSourceError(f"{path.name}: not a decodable image: {exc}") from exc


def _open(path: Path) -> SnapshotReader:
    try:
        return SnapshotReader(path)
    except OSError as exc:
        raise FrameSourceError(f"cannot read snapshot {path}: {exc.strerror or exc}") from exc
    except ContractError as exc:
        raise FrameSourceError(f"{path.name}: not a readable snapshot: {exc}") from exc


def camera_topics(path: Path, topic_prefix: str = "camera/") -> dict[str, int]:
    """Video topics under ``topic_prefix`` in the snapshot's manifest, with their message counts."""
    with _open(path) as reader:
        return {c.topic: c.count for c in reader.manifest.channels
                if c.topic.startswith(topic_prefix) and c.encoding in CODECS}


@dataclass
class DecodeCounts:
    """Access units of a snapshot that gave no frame: ``awaiting_keyframe``, or ``errors`` (undecodable)."""

    awaiting_keyframe: int = 0
    errors: int = 0


def snapshot_frames(path: Path, topic_prefix: str = "camera/", every: int = 1,
                    counts: DecodeCounts | None = None) -> Iterator[SourceFrame]:
    """Decoded frames of the snapshot's video topics under ``topic_prefix``, in log-time order.

    Undecodable access units are counted in ``counts`` and skipped (the topic resumes at its next
    keyframe); a damaged file raises :class:`FrameSourceError`.
    """
    if every < 1:
        raise FrameSourceError(f"every must be >= 1, got {every}")
    topics = sorted(camera_topics(path, topic_prefix))
    if not topics:
        raise FrameSourceError(f"{path.name}: no H.265/H.264 channel under {topic_prefix!r}")
    counts = counts if counts is not None else DecodeCounts()
    decoder = FrameDecoder()
    seen: dict[str, int] = {}
    with _open(path) as reader:
        try:
            for _, msg in reader.messages(topics):
                waited = decoder.awaiting_keyframe
                try:
                    decoded = decoder.decode(msg)
                except FrameDecodeError:
                    counts.errors += 1
                    continue
                counts.awaiting_keyframe += decoder.awaiting_keyframe - waited
                for frame in decoded:
                    n = seen[frame.topic] = seen.get(frame.topic, -1) + 1
                    if n % every == 0:
                        yield SourceFrame(f"{path.name}:{frame.topic}:{frame.seq}", frame.bgr)
        except ContractError as exc:
            raise FrameSourceError(f"{path.name}: damaged snapshot: {exc}") from exc
