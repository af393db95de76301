"""``avdata-sim`` drive, regress, search, risk and coverage, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import zmq
from PIL import Image

from shared.messages import from_frames
from simulator_harness.cli import main
from simulator_harness.modes.commands import DEFAULT_SUITE, EXIT_REGRESSION

SPEC = DEFAULT_SUITE / "lead_brake_highway.toml"
ROOT = Path(__file__).resolve().parents[3]


def test_regress_exits_4_on_a_regression(tmp_path: Path, capsys: object) -> None:
    assert main(["regress", "--workers", "0", "--out", str(tmp_path / "base")]) == 0
    baseline = tmp_path / "base" / "report.json"
    assert json.loads(baseline.read_text())["summary"]["passed"] == 5
    assert main(["regress", "--workers", "0", "--out", str(tmp_path / "same"), "--baseline", str(baseline)]) == 0
    assert (tmp_path / "same" / "report.json").read_text() == baseline.read_text().replace(
        '"baseline": false', '"baseline": true')
    code = main(["regress", "--workers", "0", "--policy", "blind", "--out", str(tmp_path / "blind"),
                 "--baseline", str(baseline)])
    assert code == EXIT_REGRESSION
    md = (tmp_path / "blind" / "report.md").read_text()
    assert "## Failures by signature" in md and "lead_braking" in md


def test_search_saves_failing_specs_and_risk_reports(tmp_path: Path) -> None:
    jaywalk = DEFAULT_SUITE / "jaywalk_urban.toml"
    assert main(["search", "--seed-scenario", str(jaywalk), "--budget", "24", "--iterations", "2", "--policy",
                 "blind", "--workers", "0", "--out", str(tmp_path / "s")]) == 0
    saved = sorted((tmp_path / "s" / "failures").glob("*.toml"))
    doc = json.loads((tmp_path / "s" / "report.json").read_text())
    assert len(saved) == doc["summary"]["failed"] > 0
    # A saved failure replays as a failing regression scenario.
    assert main(["regress", "--suite", str(saved[0]), "--policy", "blind", "--workers", "0",
                 "--out", str(tmp_path / "replay")]) == 0
    assert json.loads((tmp_path / "replay" / "report.json").read_text())["summary"]["failed"] == 1
    assert main(["risk", "--scenario", str(SPEC), "--samples", "32", "--cem-iterations", "1", "--cem-batch", "16",
                 "--workers", "0", "--out", str(tmp_path / "r")]) == 0
    risk = json.loads((tmp_path / "r" / "report.json").read_text())["summary"]
    assert risk["is_n"] == 32 and risk["mc_n"] == 32 and "is_ess" in risk and "is_upper" in risk


def test_risk_prints_and_reports_the_defensive_share_the_range_and_the_diagnostics(tmp_path: Path,
                                                                                    capsys: object) -> None:
    assert main(["risk", "--scenario", str(SPEC), "--samples", "32", "--naive-samples", "0", "--cem-iterations",
                 "1", "--cem-batch", "16", "--defensive", "0.25", "--workers", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    s = json.loads((tmp_path / "report.json").read_text())["summary"]
    assert s["defensive_share"] == 0.25 and s["is_value_range"] == 4.0 and s["is_range_a_priori"] is True
    assert "defensive α 0.25, weight range 4," in out and f"upper {s['is_upper']:.3g} at 95%" in out
    assert f"ESS {s['is_ess']:.1f}, Pareto k {float(s['is_pareto_k']):.2f}" in out  # JSON writes NaN as "nan"
    assert main(["risk", "--scenario", str(SPEC), "--samples", "32", "--defensive", "0", "--workers", "0",
                 "--out", str(tmp_path / "bad")]) == 2


def test_coverage_lists_uncovered_cells_and_counts_bad_specs(tmp_path: Path, capsys: object) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    for path in DEFAULT_SUITE.glob("*.toml"):
        (specs / path.name).write_text(path.read_text())
    (specs / "broken.toml").write_text('name = "broken"\nduration_s = "long"\n')
    png, js = tmp_path / "cov.png", tmp_path / "cov.json"
    assert main(["coverage", "--specs", str(specs), "--out", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr()  # type: ignore[attr-defined]
    assert "5 specs (1 rejected)" in out.out and "broken.toml" in out.err
    assert "road_geometry=signalised_intersection, manoeuvre=cut_in" in out.out
    doc = json.loads(js.read_text())
    assert doc["specs"] == 5 and len(doc["uncovered_projection"]) == 5 and len(doc["uncovered"]) == 3840 - 5
    assert Image.open(png).size[0] > 100
    assert main(["coverage", "--specs", str(specs), "--out", str(png), "--axes", "weather"]) == 2


def test_drive_publishes_the_closed_loop_scenario(tmp_path: Path) -> None:
    spec = tmp_path / "short.toml"
    spec.write_text(SPEC.read_text().replace("duration_s = 8.0", "duration_s = 1.0").replace("t_s = 2.0", "t_s = 0.5"))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    port = sub.bind_to_random_port("tcp://127.0.0.1")  # the publisher binds; find a free port this way
    sub.unbind(f"tcp://127.0.0.1:{port}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator_harness.cli", "drive", "--scenario", str(spec),
                             "--endpoint", f"tcp://127.0.0.1:{port}", "--width", "160", "--height", "96",
                             "--log-level", "error"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sub.connect(f"tcp://127.0.0.1:{port}")
        counts: dict[str, int] = {}
        while sub.poll(5000):
            msg = from_frames(sub.recv_multipart())
            counts[msg.topic] = counts.get(msg.topic, 0) + 1
            if counts.get("imu", 0) == 200 and counts.get("camera/front", 0) == 30:
                break
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sub.close(0)
    assert proc.returncode == 0, err
    assert counts["imu"] == 200 and counts["radar/front"] == 20 and counts["lidar/top"] == 10
    assert b"radar/front" in out

