"""The registry: names to back-ends, a typed error for an unknown one, and the embedded default
opening without importing the Milvus client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from downstream.mining.errors import BadMetadata, UnknownBackend
from downstream.mining.index.registry import BACKENDS, IndexOptions, open_index

ROOT = Path(__file__).resolve().parents[4]


def test_known_names() -> None:
    assert sorted(BACKENDS) == ["faiss", "milvus"]


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match="faiss, milvus"):
        open_index(IndexOptions(backend="annoy"))


def test_missing_location_is_a_typed_error() -> None:
    with pytest.raises(BadMetadata, match="directory"):
        open_index(IndexOptions(backend="faiss"))
    with pytest.raises(BadMetadata, match="uri"):
        open_index(IndexOptions(backend="milvus"))


def test_faiss_default_does_not_import_pymilvus(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from downstream.mining.index import IndexOptions, open_index; "
            f"open_index(IndexOptions(dim=4, directory=Path({str(tmp_path)!r}))); "
            "print('pymilvus' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
