"""``avdata-sim seed import`` on the real NGSIM US-101 file, its exit codes on files it cannot use,
and the imported spec run through ``regress``, ``search`` and ``risk``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator_harness.cli import main
from simulator_harness.scenario import load
from simulator_harness.seeds import load_commonroad, seed_from_commonroad
from tests.simulator_harness.seeds.crdocs import US101, document, lane, mover, strip, to_2018b, two_lane_road


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "us101.toml"
    assert main(["seed", "import", str(US101), "--out", str(out)]) == 0
    return out


def test_import_prints_lanes_agents_ego_and_the_gate_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "us101.toml"
    assert main(["seed", "import", str(US101), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == ("USA_US101-4_1_T-1.xml: CommonRoad 2020a USA_US101-4_1_T-1, dt 0.1 s, 22 dynamic and 0 static "
                        "obstacles")
    assert any(line.split()[:2] == ["0", "15,16"] for line in lines)  # the slip road is lane 0
    assert sum(1 for line in lines if line.split()[:1] and line.split()[0].isdigit() and "," in line) == 6
    ego = next(line for line in lines if line.startswith("ego "))
    assert ego.split()[:4] == ["ego", "475", "car", "car"]
    assert sum(line.startswith("obstacle_") for line in lines) == 21
    assert next(line for line in lines if line.startswith("obstacle_387")).split()[3] == "truck"
    assert "warning: lanelet 15 (lane 0) strays up to 4.0 m" in text
    assert "recorded tracks against the gate's bounds (smoothed over ±0.5 s): 22 of 22 pass" in text
    assert lines[-1] == f"spec -> {out}"
    assert load(out) == seed_from_commonroad(load_commonroad(US101)).spec


def test_import_json_and_ego_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    assert main(["seed", "import", str(US101), "--out", str(out), "--ego", "373", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ego_obstacle_id"] == 373 and doc["agents"][0]["name"] == "ego" and doc["agents"][0]["obstacle_id"] == 373
    assert len(doc["lanes"]) == 6 and len(doc["agents"]) == 22 and doc["recorded_failures"] == []
    assert doc["variations"][0][0] == "ego.speed_mps" and doc["out"] == str(out)
    assert load(out).ego.s_m == doc["agents"][0]["s_m"]


ON_RAMP = document(strip(7, (0.0, -20.0), (100.0, -3.5), succ=(8,)) + lane(8, -1, 100, 170, pred=(7,), left=2)
                   + lane(1, 0, 0, 100, succ=(2,), left=3) + lane(2, 0, 100, 250, pred=(1,), left=4, right=8)
                   + lane(3, 1, 0, 100, succ=(4,), right=1) + lane(4, 1, 100, 250, pred=(3,), right=2)
                   + mover(100, 20.0, 0.0, 20.0))
BAD_INPUT = {
    "no_agents.xml": (to_2018b(US101.read_text()).replace("<role>dynamic</role>", "<role>static</role>").replace(
        "<trajectory>", "<!--").replace("</trajectory>", "-->"), "no_agents.xml: no dynamic obstacle"),
    "on_ramp.xml": (ON_RAMP, "on_ramp.xml: lanelet 8: ends lane 0 at s = 170 m"),
    "old.xml": (document(two_lane_road() + mover(1, 10, 0, 10), "2017a"), "old.xml: commonRoadVersion '2017a'"),
    "broken.xml": ("<commonRoad", "broken.xml: not well-formed XML"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_files_it_cannot_use_exit_2_with_one_line(name: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text, message = BAD_INPUT[name]
    (tmp_path / name).write_text(text)
    assert main(["seed", "import", str(tmp_path / name), "--out", str(tmp_path / "s.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("avdata-sim: seed import: ") and message in err
    assert not (tmp_path / "s.toml").exists()


def test_unknown_ego_and_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "import", str(US101), "--out", str(tmp_path / "s.toml"), "--ego", "9999"]) == 2
    assert "obstacle 9999 cannot be the ego" in capsys.readouterr().err
    assert main(["seed", "import", str(tmp_path / "none.xml"), "--out", str(tmp_path / "s.toml")]) == 2
    assert "cannot read CommonRoad file" in capsys.readouterr().err


def test_imported_spec_runs_in_regress_search_and_risk(imported: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / imported.name).write_text(imported.read_text())
    assert main(["regress", "--suite", str(suite), "--workers", "0", "--out", str(tmp_path / "reg")]) == 0
    reg = json.loads((tmp_path / "reg" / "report.json").read_text())
    assert reg["summary"]["scenarios"] == 1 and reg["summary"]["implausible"] == 0
    assert main(["search", "--seed-scenario", str(imported), "--budget", "8", "--iterations", "2", "--workers", "0",
                 "--out", str(tmp_path / "search")]) == 0
    search = json.loads((tmp_path / "search" / "report.json").read_text())["summary"]
    spec = load(imported)
    assert search["simulated"] == 8 and search["varied"] == [v.key for v in spec.variations]
    assert main(["risk", "--scenario", str(imported), "--samples", "8", "--naive-samples", "4", "--cem-iterations",
                 "1", "--cem-batch", "4", "--workers", "0", "--out", str(tmp_path / "risk")]) == 0
    risk = json.loads((tmp_path / "risk" / "report.json").read_text())["summary"]
    assert risk["is_n"] == 8 and risk["mc_n"] == 4 and risk["varied"] == [v.key for v in spec.variations]
