"""Scenario coverage over a product-type operational design domain (ODD).

The ODD is a product of named axes (road geometry × manoeuvre × agents × environment ×
occlusion by default, labelled as the scenario spec labels its cells), each a tuple of names;
a cell is one value per axis. Counting, covered fraction, the list of uncovered cells and the
2-D projection are pure functions over a NumPy array of counts shaped like the taxonomy;
:func:`write_heatmap` is the one writer.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from simulator_harness.errors import CoverageError

Cell = tuple[str, ...]
CountArray = NDArray[np.int64]

#: Heatmap layout, in pixels: room for the row labels (left) and column labels (top).
LABEL_W_PX = 96
LABEL_H_PX = 16


@dataclass(frozen=True)
class OddAxis:
    """One ODD dimension: a name and its distinct named values."""

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name or not self.values:
            raise CoverageError(f"ODD axis {self.name!r} needs a name and at least one value")
        if len(set(self.values)) != len(self.values):
            raise CoverageError(f"ODD axis {self.name!r} repeats a value: {self.values}")


@dataclass(frozen=True)
class OddTaxonomy:
    """The ODD as a product of axes; ``shape`` is the shape of every count array."""

    axes: tuple[OddAxis, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.axes]
        if not names or len(set(names)) != len(names):
            raise CoverageError(f"ODD needs at least one axis and unique axis names, got {names}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values per axis, in axis order."""
        return tuple(len(a.values) for a in self.axes)

    @property
    def n_cells(self) -> int:
        """Number of cells in the product."""
        return math.prod(self.shape)

    def axis_index(self, name: str) -> int:
        """Position of the axis called ``name``."""
        for i, axis in enumerate(self.axes):
            if axis.name == name:
                return i
        raise CoverageError(f"unknown ODD axis {name!r} (known: {', '.join(a.name for a in self.axes)})")

    def cell_index(self, cell: Cell | Mapping[str, str]) -> tuple[int, ...]:
        """Index of ``cell`` (values in axis order, or a mapping axis name → value)."""
        if isinstance(cell, Mapping):
            missing = [a.name for a in self.axes if a.name not in cell]
            if missing or len(cell) != len(self.axes):
                raise CoverageError(f"cell {dict(cell)} must name exactly the axes "
                                    f"{[a.name for a in self.axes]}")
            cell = tuple(cell[a.name] for a in self.axes)
        if len(cell) != len(self.axes):
            raise CoverageError(f"cell {cell} has {len(cell)} values, the ODD has {len(self.axes)} axes")
        index = []
        for axis, value in zip(self.axes, cell, strict=True):
            if value not in axis.values:
                raise CoverageError(f"value {value!r} is not on ODD axis {axis.name!r} {axis.values}")
            index.append(axis.values.index(value))
        return tuple(index)


_KINDS = ("car", "truck", "pedestrian", "cyclist")

#: The labels :func:`simulator_harness.scenario.taxonomy_cell` gives a scenario spec: agents are the
#: kinds present besides the ego joined by ``+`` in this order, environment ``<weather>_<time>``.
DEFAULT_TAXONOMY = OddTaxonomy((
    OddAxis("road_geometry", ("straight_multilane", "signalised_intersection")),
    OddAxis("manoeuvre", ("lane_following", "cut_in", "lead_braking", "vru_crossing",
                          "crossing_traffic_violation")),
    OddAxis("agents", ("none", *("+".join(c) for r in range(1, len(_KINDS) + 1)
                                 for c in itertools.combinations(_KINDS, r)))),
    OddAxis("environment", tuple(f"{w}_{t}" for w in ("clear", "rain", "fog", "snow")
                                 for t in ("day", "dusk", "night"))),
    OddAxis("occlusion", ("clear", "occluded")),
))


@dataclass(frozen=True, eq=False)
class CellCounts:
    """Scenario counts per cell, shape ``taxonomy.shape``, and how many cells were rejected."""

    counts: CountArray
    n_rejected: int


def count_cells(taxonomy: OddTaxonomy, cells: Iterable[Cell | Mapping[str, str]],
                strict: bool = True) -> CellCounts:
    """Count scenarios per ODD cell. With ``strict`` a bad cell raises :class:`CoverageError`;
    otherwise it is counted in ``n_rejected`` and the rest are still counted."""
    counts = np.zeros(taxonomy.shape, dtype=np.int64)
    rejected = 0
    for cell in cells:
        try:
            counts[taxonomy.cell_index(cell)] += 1
        except CoverageError:
            if strict:
                raise
            rejected += 1
    return CellCounts(counts, rejected)


def covered_fraction(counts: CountArray, min_count: int = 1) -> float:
    """Share of cells holding at least ``min_count`` scenarios (0.0 to 1.0)."""
    return float(np.count_nonzero(counts >= min_count)) / counts.size


def uncovered_cells(taxonomy: OddTaxonomy, counts: CountArray, min_count: int = 1) -> list[Cell]:
    """Cells with fewer than ``min_count`` scenarios, in axis-major (C) order."""
    if counts.shape != taxonomy.shape:
        raise CoverageError(f"counts shape {counts.shape} does not match the ODD {taxonomy.shape}")
    short = np.argwhere(counts < min_count)
    return [tuple(taxonomy.axes[i].values[j] for i, j in enumerate(idx)) for idx in short]


def project(taxonomy: OddTaxonomy, counts: CountArray, x_axis: str, y_axis: str) -> CountArray:
    """Counts summed over every axis but two: shape ``(len(y values), len(x values))``."""
    ix, iy = taxonomy.axis_index(x_axis), taxonomy.axis_index(y_axis)
    if ix == iy:
        raise CoverageError(f"heatmap axes must differ, got {x_axis!r} twice")
    if counts.shape != taxonomy.shape:
        raise CoverageError(f"counts shape {counts.shape} does not match the ODD {taxonomy.shape}")
    others = tuple(i for i in range(counts.ndim) if i not in (ix, iy))
    summed = counts.sum(axis=others)
    return np.asarray(summed if iy < ix else summed.T, dtype=np.int64)


def _colour(value: int, top: int) -> tuple[int, int, int]:
    """Empty cells in red; covered ones from dark blue to yellow on a log scale."""
    if value <= 0:
        return (200, 30, 30)
    t = math.log1p(value) / math.log1p(top)
    stops = ((40, 30, 110), (30, 140, 140), (250, 230, 40))
    lo, hi, u = (stops[0], stops[1], t * 2) if t < 0.5 else (stops[1], stops[2], t * 2 - 1)
    return (round(lo[0] + (hi[0] - lo[0]) * u), round(lo[1] + (hi[1] - lo[1]) * u),
            round(lo[2] + (hi[2] - lo[2]) * u))


@dataclass(frozen=True)
class HeatmapLayout:
    """Pixel geometry of a heatmap: row-label column width, header height, column width, row height."""

    label_w_px: int
    label_h_px: int
    col_w_px: int
    row_h_px: int

    def size(self, nx: int, ny: int) -> tuple[int, int]:
        return self.label_w_px + nx * self.col_w_px, self.label_h_px + ny * self.row_h_px


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def heatmap_layout(taxonomy: OddTaxonomy, x_axis: str, y_axis: str, cell_px: int = 32) -> HeatmapLayout:
    """Sizes that fit every value name in full: columns as wide as the longest x label (at least
    ``cell_px``), the label column as wide as the longest y label or the axis names."""
    font = _font()
    xs = taxonomy.axes[taxonomy.axis_index(x_axis)].values
    ys = taxonomy.axes[taxonomy.axis_index(y_axis)].values
    def width(text: str) -> int:
        return math.ceil(font.getlength(text))

    col_w = max(cell_px, *(width(x) + 10 for x in xs))
    label_w = max(LABEL_W_PX, *(width(y) + 10 for y in ys), width(f"{y_axis} \\ {x_axis}") + 10)
    return HeatmapLayout(label_w, max(LABEL_H_PX, 22), col_w, cell_px)


def heatmap_image(taxonomy: OddTaxonomy, counts: CountArray, x_axis: str, y_axis: str,
                  cell_px: int = 32) -> Image.Image:
    """RGB image of :func:`project` with the geometry of :func:`heatmap_layout`: one box per cell
    with its count (grey-red for 0, yellow to green as counts grow), value names in full as row and
    column labels, and ``y_axis \\ x_axis`` in the corner."""
    grid = project(taxonomy, counts, x_axis, y_axis)
    ny, nx = grid.shape
    lay = heatmap_layout(taxonomy, x_axis, y_axis, cell_px)
    image = Image.new("RGB", lay.size(nx, ny), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font()
    top = max(int(grid.max()), 1)
    xs = taxonomy.axes[taxonomy.axis_index(x_axis)].values
    ys = taxonomy.axes[taxonomy.axis_index(y_axis)].values
    draw.text((4, 4), f"{y_axis} \\ {x_axis}", fill=(90, 90, 90), font=font)
    for j, name in enumerate(xs):
        draw.text((lay.label_w_px + j * lay.col_w_px + 4, 4), name, fill=(0, 0, 0), font=font)
    for i, name in enumerate(ys):
        y0 = lay.label_h_px + i * lay.row_h_px
        draw.text((4, y0 + lay.row_h_px // 3), name, fill=(0, 0, 0), font=font)
        for j in range(nx):
            x0 = lay.label_w_px + j * lay.col_w_px
            fill = _colour(int(grid[i, j]), top)
            draw.rectangle((x0, y0, x0 + lay.col_w_px - 2, y0 + lay.row_h_px - 2), fill=fill)
            ink = (0, 0, 0) if 0.3 * fill[0] + 0.6 * fill[1] + 0.1 * fill[2] > 140 else (255, 255, 255)
            draw.text((x0 + 4, y0 + lay.row_h_px // 3), str(int(grid[i, j])), fill=ink, font=font)
    return image


def write_heatmap(path: Path, taxonomy: OddTaxonomy, counts: CountArray, x_axis: str, y_axis: str,
                  cell_px: int = 32) -> Path:
    """Write :func:`heatmap_image` as PNG to ``path`` (via a temporary file, then rename)."""
    image = heatmap_image(taxonomy, counts, x_axis, y_axis, cell_px)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def all_cells(taxonomy: OddTaxonomy) -> Iterable[Cell]:
    """Every cell of the ODD, in the same order as :func:`uncovered_cells`."""
    return itertools.product(*(a.values for a in taxonomy.axes))
