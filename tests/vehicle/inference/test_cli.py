"""``avdata-vehicle ood fit`` / ``ood score`` as real processes: help, JSON, progress bar, errors."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
from pathlib import Path

from .conftest import FittedReference
from .domains import CMD, KITTI_FIT, KITTI_HELD_BACK, NUSCENES, run_cli


def test_help_names_every_option_and_an_example() -> None:
    done = run_cli("ood", "fit", "--help", timeout_s=60)
    assert done.returncode == 0
    for option in ("--frames", "--snapshot", "--out", "--quantile", "--augment", "--folds", "--shrinkage",
                   "--topic", "--every", "--config", "--json", "default: 0.99", "Example: avdata-vehicle ood fit"):
        assert option in done.stdout, option
    assert "--reference" in run_cli("ood", "score", "--help", timeout_s=60).stdout


def test_score_lines_agree_with_the_threshold(kitti_reference: FittedReference) -> None:
    done = run_cli("ood", "score", "--reference", str(kitti_reference.path), "--frames", str(KITTI_HELD_BACK),
                   "--frames", str(NUSCENES), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 14
    threshold = kitti_reference.reference.threshold.value
    for row in rows:
        assert row["reference"] == kitti_reference.reference.reference_id
        assert row["ood_ratio"] == row["ood"] / threshold
        assert row["out_of_distribution"] == row["frame"].startswith("nuscenes/"), row


def test_fit_skips_and_counts_an_unreadable_frame(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for p in sorted(KITTI_FIT.iterdir())[:5]:
        shutil.copy(p, frames / p.name)
    (frames / "000099.jpg").write_bytes(b"\xff\xd8 torn write")
    out = tmp_path / "r.avood"
    done = run_cli("ood", "fit", "--frames", str(frames), "--out", str(out), "--augment", "none", "--folds", "5",
                   "--quantile", "0.95", "--shrinkage", "lw", "--json")
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert s["skipped"]["unreadable_images"] == 1 and s["frames"] == 5 and s["views_per_frame"] == 1
    assert (s["threshold"]["quantile"], s["shrinkage"]["method"], s["folds"]) == (0.95, "lw", 5)
    assert "000099.jpg: not a decodable image" in done.stderr
    text = run_cli("ood", "fit", "--frames", str(frames), "--out", str(out), "--augment", "none")
    assert text.returncode == 0 and text.stdout.startswith(f"wrote {out} (id ")


def test_progress_bar_on_a_terminal(kitti_reference: FittedReference) -> None:
    """With stderr on a terminal (a real pty), scoring draws a rich progress bar there."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([*CMD, "ood", "score", "--reference", str(kitti_reference.path), "--frames",
                             str(NUSCENES)], stdout=subprocess.PIPE, stderr=sub, env={**os.environ, "COLUMNS": "100"})
    os.close(sub)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO once the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(120) == 0
    os.close(main)
    assert proc.stdout is not None and len(proc.stdout.read().splitlines()) == 6
    assert b"scoring" in seen and b"/6" in seen


def test_errors_exit_2_with_one_line(tmp_path: Path, kitti_reference: FittedReference) -> None:
    cases = [
        (["ood", "fit", "--out", str(tmp_path / "x.avood")], "no frames given"),
        (["ood", "fit", "--frames", str(NUSCENES), "--out", str(tmp_path / "x.avood"), "--quantile", "1.5"],
         "quantile must be within (0.5, 1)"),
        (["ood", "fit", "--frames", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.avood")],
         "not a directory of frames"),
        (["ood", "score", "--reference", str(tmp_path / "none.avood"), "--frames", str(NUSCENES)],
         "cannot read ood reference"),
        (["ood", "fit", "--snapshot", str(tmp_path / "x.mcap"), "--out", str(tmp_path / "x.avood"), "--every", "0"],
         "--every must be >= 1"),
        (["ood", "fit", "--frames", str(NUSCENES), "--out", str(tmp_path / "x.avood"), "--threads", "-1"],
         "--threads must be >= 0"),
    ]
    config = tmp_path / "vehicle.toml"
    config.write_text('vehicle_id = "car-1"\n[inference]\n[inference.model]\nembedding_seed = 7\n')
    cases.append((["ood", "score", "--reference", str(kitti_reference.path), "--frames", str(NUSCENES),
                   "--config", str(config)], "projection_seed 0 != 7"))
    for args, message in cases:
        done = run_cli(*args, timeout_s=120)
        assert done.returncode == 2, (args, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("avdata-vehicle: ") and message in last, (args, last)
    assert not (tmp_path / "x.avood").exists()
