"""ODD coverage: counts, covered fraction, uncovered cells and a heatmap PNG that really decodes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simulator_harness.errors import CoverageError
from simulator_harness.scenario import (
    Actor,
    ActorKind,
    Event,
    EventKind,
    Intent,
    ScenarioSpec,
    Weather,
    taxonomy_cell,
)
from simulator_harness.stats.coverage import (
    DEFAULT_TAXONOMY,
    LABEL_H_PX,
    LABEL_W_PX,
    Cell,
    OddAxis,
    OddTaxonomy,
    all_cells,
    count_cells,
    covered_fraction,
    heatmap_image,
    heatmap_layout,
    project,
    uncovered_cells,
    write_heatmap,
)

SMALL = OddTaxonomy((
    OddAxis("road_geometry", ("straight", "curve", "intersection")),
    OddAxis("manoeuvre", ("lane_keep", "lane_change")),
    OddAxis("agents", ("none", "vehicles")),
    OddAxis("environment", ("day_clear", "rain")),
    OddAxis("occlusion", ("none", "heavy")),
))

SEEN: list[Cell | Mapping[str, str]] = [
    ("straight", "lane_keep", "none", "day_clear", "none"),
    ("straight", "lane_keep", "none", "day_clear", "none"),
    ("curve", "lane_change", "vehicles", "rain", "heavy"),
    {"road_geometry": "intersection", "manoeuvre": "lane_keep", "agents": "vehicles",
     "environment": "day_clear", "occlusion": "none"},
]


def test_counts_per_cell() -> None:
    counts = count_cells(SMALL, SEEN).counts
    assert counts.shape == (3, 2, 2, 2, 2)
    assert counts.sum() == 4
    assert counts[0, 0, 0, 0, 0] == 2
    assert counts[1, 1, 1, 1, 1] == 1
    assert counts[2, 0, 1, 0, 0] == 1


def test_covered_fraction_and_uncovered_list() -> None:
    counts = count_cells(SMALL, SEEN).counts
    assert covered_fraction(counts) == pytest.approx(3 / 48)
    assert covered_fraction(counts, min_count=2) == pytest.approx(1 / 48)
    missing = uncovered_cells(SMALL, counts)
    assert len(missing) == 45
    assert ("straight", "lane_keep", "none", "day_clear", "none") not in missing
    assert ("curve", "lane_keep", "none", "day_clear", "none") in missing
    assert set(missing) | {c for c in SEEN[:3] if isinstance(c, tuple)} | {("intersection", "lane_keep", "vehicles",
                                                            "day_clear", "none")} == set(all_cells(SMALL))
    full = count_cells(SMALL, all_cells(SMALL)).counts
    assert covered_fraction(full) == 1.0 and uncovered_cells(SMALL, full) == []


def test_default_taxonomy_has_the_five_odd_axes() -> None:
    names = [a.name for a in DEFAULT_TAXONOMY.axes]
    assert names == ["road_geometry", "manoeuvre", "agents", "environment", "occlusion"]
    assert DEFAULT_TAXONOMY.shape == (2, 5, 16, 12, 2)
    assert DEFAULT_TAXONOMY.n_cells == int(np.prod(DEFAULT_TAXONOMY.shape)) == 3840


def test_default_taxonomy_accepts_the_cells_of_scenario_specs() -> None:
    cells = [taxonomy_cell(spec) for spec in (
        ScenarioSpec(name="cut", actors=(Actor("a1", lane=1, s_m=70.0), Actor("p1", kind=ActorKind.PEDESTRIAN,
                                                                                lane=0, intent=Intent.WALK)),
                     events=(Event(EventKind.CUT_IN, "a1", 2.0),), weather=Weather.RAIN),
        ScenarioSpec(name="alone"),
    )]
    counts = count_cells(DEFAULT_TAXONOMY, cells).counts
    assert counts.sum() == 2 and counts.max() == 1
    assert cells[0] in [c for c in all_cells(DEFAULT_TAXONOMY)]


def test_projection_sums_the_other_axes_in_both_orientations() -> None:
    counts = count_cells(SMALL, SEEN).counts
    grid = project(SMALL, counts, "road_geometry", "environment")
    assert grid.shape == (2, 3)
    np.testing.assert_array_equal(grid, [[2, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(project(SMALL, counts, "environment", "road_geometry"), grid.T)


def test_bad_cells_raise_or_are_counted_as_rejected() -> None:
    bad: list[Cell | Mapping[str, str]] = [("straight", "lane_keep", "none", "day_clear", "fog"), ("straight",),
           {"road_geometry": "curve"}]
    for cell in bad:
        with pytest.raises(CoverageError):
            count_cells(SMALL, [cell])
    tolerant = count_cells(SMALL, [*SEEN, *bad], strict=False)
    assert tolerant.n_rejected == 3 and tolerant.counts.sum() == 4
    with pytest.raises(CoverageError, match="unknown ODD axis 'weather'"):
        project(SMALL, tolerant.counts, "weather", "agents")
    with pytest.raises(CoverageError, match="repeats"):
        OddAxis("agents", ("none", "none"))


def test_heatmap_png_decodes_with_expected_size_and_colours(tmp_path: Path) -> None:
    counts = count_cells(SMALL, SEEN).counts
    path = write_heatmap(tmp_path / "coverage.png", SMALL, counts, "road_geometry", "environment", cell_px=20)
    lay = heatmap_layout(SMALL, "road_geometry", "environment", 20)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == lay.size(3, 2)
        assert img.size[0] >= LABEL_W_PX + 3 * 20 and img.size[1] >= LABEL_H_PX + 2 * 20
        pixels = np.asarray(img.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 3
    # An uncovered cell is red, a covered one is not.
    empty = pixels[lay.label_h_px + 1, lay.label_w_px + lay.col_w_px + 1]
    full = pixels[lay.label_h_px + 1, lay.label_w_px + 1]
    assert tuple(empty) == (200, 30, 30)
    assert tuple(full) != (200, 30, 30)
    assert not (tmp_path / "coverage.png.tmp").exists()


def test_heatmap_of_the_default_odd() -> None:
    counts = count_cells(DEFAULT_TAXONOMY, list(all_cells(DEFAULT_TAXONOMY))[:900]).counts
    img = heatmap_image(DEFAULT_TAXONOMY, counts, "manoeuvre", "environment", cell_px=24)
    assert img.size == heatmap_layout(DEFAULT_TAXONOMY, "manoeuvre", "environment", 24).size(5, 12)
    assert img.size[0] >= LABEL_W_PX + 5 * 24 and img.size[1] >= LABEL_H_PX + 12 * 24
