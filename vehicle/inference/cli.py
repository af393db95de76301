"""``avdata-vehicle ood fit`` and ``ood score``: the offline out-of-distribution reference.

``fit`` embeds every frame of the sources given (``--frames DIR`` of JPEG/PNG files, ``--snapshot
FILE.mcap`` camera channels; both repeatable) with the detector that the car runs (``[inference.model]``
of ``--config``, or the bundled model), takes the views ``--augment`` asks for, fits the reference
(:mod:`vehicle.inference.fitting`) and writes it to ``--out``; ``[inference] ood_reference`` then
names that file. ``score`` scores frames against a reference, one line per frame. Both print a
progress bar on stderr when it is a terminal; ``--json`` makes stdout machine-readable (one object
for ``fit``, one per frame for ``score``). The parsers live in :mod:`vehicle.cli`, which must not
import ONNX Runtime for its other commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vehicle.config.inference import DetectorConfig
from vehicle.errors import FrameSourceError, OodFitError
from vehicle.inference.fitting import FitResult, fit_reference
from vehicle.inference.frames import (
    DecodeCounts,
    SourceFrame,
    camera_topics,
    image_paths,
    read_image,
    snapshot_frames,
    views,
)
from vehicle.inference.model import Detector
from vehicle.inference.reference import SCHEMA, OodReference, load_reference, save_reference

log = logging.getLogger(__name__)


@dataclass
class Sources:
    """The frames named on the command line, and what was skipped while reading them."""

    frame_dirs: list[Path]
    snapshots: list[Path]
    topic_prefix: str = "camera/"
    every: int = 1
    unreadable: dict[str, str] = field(default_factory=dict)
    decode: DecodeCounts = field(default_factory=DecodeCounts)

    def names(self) -> list[str]:
        return [f"frames:{p.name}" for p in self.frame_dirs] + [f"snapshot:{p.name}" for p in self.snapshots]

    def expected(self) -> int:
        """Frames the sources should give (for the progress bar; snapshots estimated from the manifest)."""
        n = sum(len(image_paths(d)) for d in self.frame_dirs)
        for snap in self.snapshots:
            n += sum(math.ceil(c / self.every) for c in camera_topics(snap, self.topic_prefix).values())
        return n

    def frames(self) -> Iterator[SourceFrame]:
        """Every readable frame, directories first; unreadable image files are recorded and skipped."""
        for directory in self.frame_dirs:
            for path in image_paths(directory):
                try:
                    yield SourceFrame(f"{directory.name}/{path.name}", read_image(path))
                except FrameSourceError as exc:
                    self.unreadable[f"{directory.name}/{path.name}"] = str(exc)
                    log.warning("frame skipped", extra={"path": str(path), "error": str(exc)})
        for snap in self.snapshots:
            yield from snapshot_frames(snap, self.topic_prefix, self.every, self.decode)

    def skipped(self) -> dict[str, int]:
        return {"unreadable_images": len(self.unreadable), "undecodable_access_units": self.decode.errors,
                "awaiting_keyframe": self.decode.awaiting_keyframe}


@contextmanager
def _progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Lines printed to a piped stdout stay there; on a terminal rich prints them above the bar.
    with Progress(*columns, console=Console(stderr=True), transient=True,
                  redirect_stdout=sys.stdout.isatty()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task, 1)


def _detector(model: DetectorConfig, threads: int) -> Detector:
    if threads < 0:
        raise OodFitError(f"--threads must be >= 0, got {threads}")
    return Detector(replace(model, intra_op_threads=threads))


def _sources(args: argparse.Namespace) -> Sources:
    if not args.frames and not args.snapshot:
        raise FrameSourceError("no frames given: name at least one --frames DIR or --snapshot FILE.mcap")
    if args.every < 1:
        raise FrameSourceError(f"--every must be >= 1, got {args.every}")
    return Sources(list(args.frames), list(args.snapshot), args.topic, args.every)


def fit(args: argparse.Namespace, model: DetectorConfig) -> int:
    """Body of ``ood fit``; raises :class:`vehicle.errors.VehicleError` subclasses."""
    t0 = time.monotonic()
    sources = _sources(args)
    detector = _detector(model, args.threads)
    groups: list[np.ndarray] = []
    ids: list[str] = []
    with _progress("embedding", sources.expected(), sys.stderr.isatty()) as advance:
        for frame in sources.frames():
            groups.append(np.stack([detector.detect(v).embedding for v in views(frame.bgr, args.augment)]))
            ids.append(frame.frame_id)
            advance()
    result = fit_reference(groups, ids, detector.embedding_spec, quantile=args.quantile, folds=args.folds,
                           shrinkage=args.shrinkage, augment=args.augment, sources=sources.names(),
                           fitted_unix_s=int(time.time()))
    reference = save_reference(result.reference, args.out)
    summary = fit_summary(args.out, reference, result, sources, time.monotonic() - t0)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        t = reference.threshold
        print(f"wrote {args.out} (id {reference.reference_id}): {summary['frames']} frames x "
              f"{summary['views_per_frame']} views, {reference.gaussian.method} shrinkage "
              f"{reference.gaussian.shrinkage:.3f}, threshold {t.value:.3f} (quantile {t.quantile}, "
              f"out-of-fold max {summary['distances']['out_of_fold']['max']:.3f}); "
              f"skipped {summary['skipped']}")
    return 0


def fit_summary(path: Path, reference: OodReference, result: FitResult, sources: Sources,
                seconds: float) -> dict[str, Any]:
    """The ``ood fit --json`` object."""
    g, t = reference.gaussian, reference.threshold

    def stats(d: np.ndarray) -> dict[str, float]:
        return {"median": float(np.median(d)), "max": float(d.max())}

    frames = len(reference.fit.frame_ids)
    return {
        "reference": str(path), "id": reference.reference_id, "schema": SCHEMA, "version": reference.version,
        "frames": frames, "views_per_frame": g.n_samples // frames, "samples": g.n_samples,
        "sources": sources.names(), "skipped": sources.skipped(),
        "shrinkage": {"method": g.method, "weight": g.shrinkage}, "folds": reference.fit.folds,
        "threshold": {"value": t.value, "quantile": t.quantile, "method": t.method, "empirical": t.empirical},
        "distances": {"in_sample": stats(result.in_sample), "out_of_fold": stats(result.out_of_fold)},
        "model": reference.spec.to_body(), "seconds": round(seconds, 3),
    }


def score(args: argparse.Namespace, model: DetectorConfig) -> int:
    """Body of ``ood score``: one line per frame; raises :class:`vehicle.errors.VehicleError` subclasses."""
    reference = load_reference(args.reference)
    sources = _sources(args)
    detector = _detector(model, args.threads)
    reference.check(detector.embedding_spec, args.reference.name)
    threshold = reference.threshold.value
    with _progress("scoring", sources.expected(), sys.stderr.isatty()) as advance:
        for frame in sources.frames():
            ood = reference.score(detector.detect(frame.bgr).embedding)
            row = {"frame": frame.frame_id, "ood": ood, "ood_ratio": ood / threshold,
                   "out_of_distribution": ood >= threshold, "reference": reference.reference_id}
            print(json.dumps(row) if args.json else
                  f"{'OOD' if ood >= threshold else 'in '} ood={ood:.3f} ratio={ood / threshold:.3f} "
                  f"{frame.frame_id}", flush=True)
            advance()
    if sources.unreadable:
        print(f"skipped {sources.skipped()}", file=sys.stderr)
    return 0
