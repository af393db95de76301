"""``make bench`` keeps the last good figures of a benchmark that failed, marks them, and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import BEGIN_MARK, END_MARK, Figure
from bench.run_all import main


def _ok(quick: bool = False) -> list[Figure]:
    return [Figure("fast_thing", 2.0, "MB/s", 4.0, "raw copy")]


def _broken(quick: bool = False) -> list[Figure]:
    raise RuntimeError("socket refused")


def _slow_ok(quick: bool = False) -> list[Figure]:
    return [Figure("slow_thing", 1.0, "ms", 0.5, "bare call", higher_is_better=False)]


def test_a_failed_module_keeps_its_last_good_figures_marked_and_the_run_fails(tmp_path: Path) -> None:
    out, readme = tmp_path / "results.json", tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\n{BEGIN_MARK}\nold\n{END_MARK}\n")
    assert main(["--out", str(out), "--readme", str(readme)], {"bench_a": _ok, "bench_b": _slow_ok}) == 0
    first = json.loads(out.read_text())
    assert set(first["figures"]) == {"fast_thing", "slow_thing"} and first["failed_modules"] == []

    assert main(["--out", str(out), "--readme", str(readme)], {"bench_a": _ok, "bench_b": _broken}) == 1
    second = json.loads(out.read_text())
    assert second["failed_modules"] == ["bench_b"]
    slow = second["figures"]["slow_thing"]
    assert slow["value"] == 1.0 and slow["stale_since"] == first["machine"]["when"]
    assert second["figures"]["fast_thing"]["stale_since"] == ""
    table = readme.read_text()
    assert "| slow_thing |" in table and f"FAILED this run; figure from {first['machine']['when']}" in table
    assert "| fast_thing |" in table and table.count("FAILED this run") == 1

    # a later success replaces the stale figure with a fresh one
    assert main(["--out", str(out), "--readme", str(readme)], {"bench_a": _ok, "bench_b": _slow_ok}) == 0
    assert json.loads(out.read_text())["figures"]["slow_thing"]["stale_since"] == ""
    assert "FAILED" not in readme.read_text()


def test_only_keeps_the_other_modules_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    assert main(["--out", str(out), "--quick"], {"bench_a": _ok, "bench_b": _slow_ok}) == 0
    assert main(["--out", str(out), "--only", "bench_a"], {"bench_a": _ok}) == 0
    kept = json.loads(out.read_text())["figures"]
    assert set(kept) == {"fast_thing", "slow_thing"} and kept["slow_thing"]["stale_since"] == ""
