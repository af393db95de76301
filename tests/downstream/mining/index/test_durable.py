"""Crash safety of the embedded index's directory: a writer that fails, a crash between the
generation's rename and CURRENT's, a damaged file, and real SIGKILLs of a process that persists in
a loop; each time the index opens with the last complete generation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from downstream.mining.errors import IndexCorrupt
from downstream.mining.index import durable
from downstream.mining.index.faiss_index import FaissIndex
from tests.downstream.mining.index.conftest import clustered, meta

ROOT = Path(__file__).resolve().parents[4]


def _index(home: Path, n: int) -> tuple[FaissIndex, np.ndarray]:
    index = FaissIndex.open(home, 8)
    x = clustered(n, 8, seed=2)
    index.upsert(list(range(n)), x, [meta(i) for i in range(n)])
    return index, x


def test_a_failed_write_leaves_the_previous_generation(tmp_path: Path) -> None:
    index, x = _index(tmp_path, 50)
    index.persist()
    index.upsert([1000], x[0], [meta(1000)])

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        durable.write_generation(tmp_path, {"format": "x"}, {"ids.npy": broken})
    assert FaissIndex.open(tmp_path, 8).count() == 50
    index.persist()  # the next write clears the debris and lands
    assert FaissIndex.open(tmp_path, 8).count() == 51
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")] == ["gen-000002"]


def test_a_generation_that_current_does_not_name_is_ignored(tmp_path: Path) -> None:
    index, _ = _index(tmp_path, 30)
    index.persist()
    live = durable.current_generation(tmp_path)
    assert live is not None
    (tmp_path / "gen-000002").mkdir()  # a crash after its rename, before CURRENT moved
    (tmp_path / "gen-000002" / "manifest.json").write_text("{}")
    assert FaissIndex.open(tmp_path, 8).count() == 30
    index.persist()
    assert durable.current_generation(tmp_path) == tmp_path / "gen-000002"
    assert FaissIndex.open(tmp_path, 8).count() == 30


def test_a_damaged_file_is_reported(tmp_path: Path) -> None:
    index, _ = _index(tmp_path, 30)
    index.persist()
    gen = durable.current_generation(tmp_path)
    assert gen is not None
    with open(gen / "ids.npy", "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(IndexCorrupt, match="manifest says"):
        FaissIndex.open(tmp_path, 8)
    (tmp_path / "CURRENT").write_text("gen-999999\n")
    with pytest.raises(IndexCorrupt, match="not a complete generation"):
        FaissIndex.open(tmp_path, 8)


def test_wrong_dim_is_refused(tmp_path: Path) -> None:
    _index(tmp_path, 10)[0].persist()
    with pytest.raises(IndexCorrupt, match="dim"):
        FaissIndex.open(tmp_path, 16)


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from pathlib import Path
    from downstream.mining.index.faiss_index import FaissIndex
    from tests.downstream.mining.index.conftest import clustered, meta
    index = FaissIndex.open(Path(sys.argv[1]), 32, min_train_rows=1000)
    x = clustered(100_000, 32, seed=5)
    n = index.count()
    print("ready", n, flush=True)
    while True:
        index.upsert(list(range(n, n + 500)), x[n % 99_000:n % 99_000 + 500], [meta(i) for i in range(n, n + 500)])
        n += 500
        index.persist()
""")


@pytest.mark.parametrize("delay_s", [0.3, 0.9, 1.7])
def test_sigkill_while_persisting_leaves_a_complete_generation(tmp_path: Path, delay_s: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2):  # the second run starts from what the killed first one left
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env,
                                cwd=ROOT, text=True)
        assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        index = FaissIndex.open(tmp_path, 32)
        n = index.count()
        assert n % 500 == 0
        if n:
            probe = index.search(clustered(100_000, 32, seed=5)[0], 1)
            assert probe.hits()[0][1] < 1e-4
