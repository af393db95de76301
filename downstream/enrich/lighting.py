"""Lighting and time of day from the sun's elevation, checked against camera brightness.

Classes follow the civil-twilight convention on the sun's apparent elevation ``h`` and use the ODD
taxonomy's vocabulary (:class:`simulator_harness.scenario.spec.TimeOfDay`):

- ``day``: ``h > 6°`` (the sun well above the horizon),
- ``dusk``: ``-6° <= h <= 6°`` (the taxonomy's word for twilight, morning or evening),
- ``night``: ``h < -6°`` (past civil twilight).

Confidence is 0.5 at a class boundary and rises linearly to 1.0 three degrees inside the class:
a segment near a boundary is honestly ambiguous. ``time_of_day`` says ``morning`` or ``afternoon``
(the sun before or after local solar noon, from the hour angle), or ``night``.

The brightness check (:func:`check_lighting`) compares the median Rec. 601 luma of the segment's
camera frames with what the class implies. Auto exposure brightens night images and tunnels
darken day ones, so it only flags clear contradictions: a ``day`` tag with median luma below
:data:`DAY_MIN_LUMA`, or a ``night`` tag above :data:`NIGHT_MAX_LUMA`. A contradiction halves the
lighting tag's confidence and adds ``lighting_check:disagree``; agreement adds
``lighting_check:agree`` and leaves the tag as it was. Twilight implies no brightness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError
from downstream.enrich.solar import sun_positions
from downstream.enrich.tags import Tag, TagSource
from simulator_harness.scenario.spec import TimeOfDay

TWILIGHT_DEG = 6.0
#: Degrees inside a class at which the solar confidence reaches 1.0.
FULL_CONFIDENCE_DEG = 3.0
#: A day image whose median luma (0-255) lies below this contradicts the sun.
DAY_MIN_LUMA = 40.0
#: A night image whose median luma (0-255) lies above this contradicts the sun.
NIGHT_MAX_LUMA = 60.0
#: How far the brightness heuristic itself is trusted (auto exposure, tunnels, glare).
CHECK_CONFIDENCE = 0.6
_REC601 = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True, slots=True)
class LightingCheck:
    """The outcome of :func:`check_lighting`: the (possibly lowered) lighting tag and the check tag."""

    lighting: Tag
    check: Tag | None  # None when the class implies no brightness (twilight)
    median_luma: float


def lighting_class(elevation_deg: float) -> tuple[TimeOfDay, float]:
    """``(class, confidence)`` for an apparent sun elevation (see the module docstring)."""
    h = float(elevation_deg)
    if not np.isfinite(h):
        raise EnrichInputError(f"sun elevation must be a finite number of degrees, got {elevation_deg}")
    if h > TWILIGHT_DEG:
        cls, margin = TimeOfDay.DAY, h - TWILIGHT_DEG
    elif h < -TWILIGHT_DEG:
        cls, margin = TimeOfDay.NIGHT, -TWILIGHT_DEG - h
    else:
        cls, margin = TimeOfDay.DUSK, TWILIGHT_DEG - abs(h)
    return cls, 0.5 + 0.5 * min(1.0, margin / FULL_CONFIDENCE_DEG)


def lighting_tags(t_utc_ns: npt.ArrayLike, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> tuple[Tag, Tag]:
    """``lighting`` and ``time_of_day`` tags from a segment's GNSS fixes (``(N,)`` arrays, N >= 1).

    The sun is taken at the fixes' median elevation and hour angle: over a 20-40 s segment it
    moves by well under a tenth of a degree, so the median only guards against a bad fix.
    """
    t = np.atleast_1d(np.asarray(t_utc_ns, dtype=np.int64))
    if t.size == 0:
        raise EnrichInputError("lighting needs at least one GNSS fix")
    elevation, _, hour_angle = sun_positions(t, lat_deg, lon_deg)
    h = float(np.median(elevation))
    cls, confidence = lighting_class(h)
    morning = float(np.median(hour_angle)) < 0.0
    period = "night" if cls is TimeOfDay.NIGHT else "morning" if morning else "afternoon"
    return (Tag("lighting", cls.value, TagSource.SOLAR, round(confidence, 3)),
            Tag("time_of_day", period, TagSource.SOLAR, round(confidence, 3)))


def image_brightness(image: npt.NDArray[np.uint8]) -> float:
    """Median Rec. 601 luma (0-255) of an ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 image."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or a.size == 0:
        raise EnrichInputError(f"image must be a non-empty (H, W, 3) or (H, W) uint8 array, "
                               f"got {a.dtype} {a.shape}")
    luma = a.astype(np.float64) if a.ndim == 2 else a.astype(np.float64) @ _REC601
    return float(np.median(luma))


def check_lighting(lighting: Tag, images: Sequence[npt.NDArray[np.uint8]]) -> LightingCheck:
    """Cross-check a solar ``lighting`` tag with the segment's camera frames (see module docstring)."""
    if lighting.name != "lighting":
        raise EnrichInputError(f"check_lighting needs a lighting tag, got {lighting.encode()}")
    if not images:
        raise EnrichInputError("check_lighting needs at least one camera frame")
    luma = float(np.median([image_brightness(im) for im in images]))
    if lighting.value == TimeOfDay.DAY.value:
        agrees = luma >= DAY_MIN_LUMA
    elif lighting.value == TimeOfDay.NIGHT.value:
        agrees = luma <= NIGHT_MAX_LUMA
    else:
        return LightingCheck(lighting, None, luma)
    check = Tag("lighting_check", "agree" if agrees else "disagree", TagSource.IMAGE, CHECK_CONFIDENCE)
    if agrees:
        return LightingCheck(lighting, check, luma)
    lowered = Tag(lighting.name, lighting.value, lighting.source, round(lighting.confidence / 2, 3))
    return LightingCheck(lowered, check, luma)
