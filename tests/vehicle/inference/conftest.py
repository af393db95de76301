"""The KITTI reference, fitted once per session by the real ``avdata-vehicle ood fit`` process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vehicle.inference.reference import OodReference, load_reference

from .domains import KITTI_FIT, run_cli


@dataclass(frozen=True)
class FittedReference:
    path: Path
    summary: dict[str, Any]
    reference: OodReference


@pytest.fixture(scope="session")
def kitti_reference(tmp_path_factory: pytest.TempPathFactory) -> FittedReference:
    """``ood fit --frames kitti_tiny/fit`` with the defaults (flip_crops, OAS, 8 folds, quantile 0.99)."""
    out = tmp_path_factory.mktemp("ood") / "kitti.avood"
    done = run_cli("ood", "fit", "--frames", str(KITTI_FIT), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    return FittedReference(out, json.loads(done.stdout), load_reference(out))
