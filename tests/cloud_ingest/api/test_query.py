"""Segment queries: filters and cursor pages on both DB back-ends, the parsing rules, and the
``segments ls`` / ``operators add`` / ``calib import|ls`` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest import auth
from cloud_ingest.api.query import build_query, decode_cursor, encode_cursor, parse_time_ns
from cloud_ingest.cli.main import main
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import AuthError, OperatorExists, ProtocolError
from cloud_ingest.storage.metadata.protocol import SegmentQuery, SegmentRow, UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from tests.cloud_ingest.conftest import NS, T0_NS, open_config_db

KITTI_CALIB = Path(__file__).parents[2] / "fixtures" / "real" / "kitti" / "calib" / "000000.txt"


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    yield d
    d.close()


def seed(db: SQLMetadataDB) -> None:
    """30 segments: car-0/1/2 round robin, 30 s apart; every 3rd has hard_brake, every 5th tag 'night';
    segment 29 is superseded."""
    db.create_upload(UploadRecord("u" * 32, "car-0", 1, 0, "f" * 64, "s", "f", "in_progress", 1, 2**62))
    rows = []
    for i in range(30):
        labels = (("trigger:hard_brake", "tag:hard_brake") if i % 3 == 0 else ()) + (("tag:night",) if i % 5 == 0
                                                                                     else ())
        rows.append(SegmentRow(f"s{i:02d}", f"car-{i % 3}", T0_NS + i * 30 * NS, T0_NS + i * 30 * NS + 20 * NS,
                               "snap", "f" * 64, "u" * 32, "raw/k", b"r", 1, labels=labels,
                               superseded_by="s00" if i == 29 else ""))
    db.commit_ingest("u" * 32, rows, [], 1)


def ids(rows: list[SegmentRow]) -> list[str]:
    return [r.segment_id for r in rows]


def test_filters_combine(db: SQLMetadataDB) -> None:
    seed(db)
    page, cursor = db.query_segments(SegmentQuery(limit=100))
    assert ids(page) == [f"s{i:02d}" for i in range(28, -1, -1)] and cursor is None  # s29 superseded
    assert len(db.query_segments(SegmentQuery(include_superseded=True))[0]) == 30
    assert ids(db.query_segments(SegmentQuery(vehicle_id="car-1"))[0]) == [f"s{i:02d}" for i in range(28, 0, -3)]
    assert ids(db.query_segments(SegmentQuery(trigger="hard_brake", vehicle_id="car-0"))[0]) == \
        [f"s{i:02d}" for i in range(27, -1, -3)]
    assert ids(db.query_segments(SegmentQuery(tag="night"))[0]) == ["s25", "s20", "s15", "s10", "s05", "s00"]
    assert ids(db.query_segments(SegmentQuery(tag="night", trigger="hard_brake"))[0]) == ["s15", "s00"]
    # overlap with [since, until): s01 is [30 s, 50 s), s02 [60 s, 80 s)
    window = SegmentQuery(since_ns=T0_NS + 45 * NS, until_ns=T0_NS + 61 * NS)
    assert ids(db.query_segments(window)[0]) == ["s02", "s01"]
    assert db.query_segments(SegmentQuery(trigger="ttc"))[0] == []


def test_cursor_pages_cover_everything_once(db: SQLMetadataDB) -> None:
    seed(db)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = db.query_segments(SegmentQuery(limit=7, cursor=cursor))
        seen += ids(page)
        pages += 1
        if cursor is None:
            break
    assert pages == 5 and seen == [f"s{i:02d}" for i in range(28, -1, -1)]


def test_query_text_parsing() -> None:
    assert parse_time_ns("since", "2023-11-14T22:13:20Z") == T0_NS
    assert parse_time_ns("since", "2023-11-14T22:13:20") == T0_NS  # no zone: UTC
    assert parse_time_ns("since", "2023-11-14T23:13:20.5+01:00") == T0_NS + NS // 2
    assert parse_time_ns("since", str(T0_NS)) == T0_NS and parse_time_ns("since", "") is None
    assert decode_cursor(encode_cursor((T0_NS, "s1"))) == (T0_NS, "s1")
    for bad in ({"since": "yesterday"}, {"limit": "0"}, {"limit": "x"}, {"cursor": "bm9jb2xvbg"},
                {"since": "2023-11-15", "until": "2023-11-14"}):
        params: dict[str, str | None] = {"vehicle": None, "since": None, "until": None, "trigger": None,
                                         "tag": None, "limit": None, "cursor": None, **bad}
        with pytest.raises(ProtocolError) as info:
            build_query(**params)  # type: ignore[arg-type]
        assert info.value.reason == "bad_query"


def test_operator_tokens(db: SQLMetadataDB) -> None:
    token = auth.add_operator(db, "analyst")
    assert token.startswith("op.analyst.") and auth.authenticate_operator(db, f"Bearer {token}") == "analyst"
    with pytest.raises(OperatorExists):
        auth.add_operator(db, "analyst")
    for bad in (token[:-1] + "x", "op.nobody." + token.rsplit(".", 1)[1], token.removeprefix("op."), ""):
        with pytest.raises(AuthError):
            auth.authenticate_operator(db, f"Bearer {bad}" if bad else None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_segments_ls_filters_and_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "cloud")
    db = open_config_db(CloudConfig(data_dir=Path(d)))
    seed(db)
    db.close()
    rc, out, err = run(["segments", "ls", "--data-dir", d, "--vehicle", "car-0", "--trigger", "hard_brake",
                        "--since", "2023-11-14T22:20:00Z", "--limit", "2"], capsys)
    assert rc == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["s27", "s24"]
    cursor = err.split("--cursor ")[1].strip()
    rc, out, _ = run(["segments", "ls", "--data-dir", d, "--vehicle", "car-0", "--trigger", "hard_brake",
                      "--since", "2023-11-14T22:20:00Z", "--limit", "2", "--cursor", cursor, "--json"], capsys)
    doc = json.loads(out)
    assert [s["segment_id"] for s in doc["segments"]] == ["s21", "s18"] and doc["next_cursor"]
    rc, out, _ = run(["segments", "ls", "--data-dir", d, "--tag", "night", "--until", str(T0_NS + 200 * NS)],
                     capsys)
    assert [line.split("\t")[0] for line in out.splitlines()] == ["s05", "s00"]
    rc, _, err = run(["segments", "ls", "--data-dir", d, "--since", "noon"], capsys)
    assert rc == 1 and "ISO 8601" in err


def test_cli_operators_and_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "cloud")
    rc, out, _ = run(["operators", "add", "analyst", "--data-dir", d], capsys)
    assert rc == 0 and out.startswith("op.analyst.") and out.count("\n") == 1
    rc, _, err = run(["operators", "add", "analyst", "--data-dir", d], capsys)
    assert rc == 1 and "already exists" in err
    run(["vehicles", "add", "car-1", "--data-dir", d], capsys)
    rc, out, _ = run(["calib", "import", "--format", "kitti", "--vehicle", "car-1", "--version", "k1",
                      "--valid-from-ns", str(T0_NS), str(KITTI_CALIB), "--data-dir", d], capsys)
    assert rc == 0 and out.startswith("car-1\tk1\t[") and "open)" in out
    rc, _, err = run(["calib", "import", "--format", "kitti", "--vehicle", "car-1", "--version", "k0",
                      "--valid-from-ns", str(T0_NS - 10), "--valid-to-ns", str(T0_NS + 5), str(KITTI_CALIB),
                      "--data-dir", d], capsys)
    assert rc == 1 and "overlaps version 'k1'" in err
    rc, _, err = run(["calib", "import", "--format", "kitti", "--vehicle", "car-1", "--version", "k2",
                      "--valid-from-ns", "0", str(tmp_path / "missing.txt"), "--data-dir", d], capsys)
    assert rc == 1 and "not found" in err
    rc, out, _ = run(["calib", "ls", "--data-dir", d], capsys)
    assert out.startswith(f"car-1\tk1\t{T0_NS}\topen\t")
    rc, out, _ = run(["calib", "ls", "--data-dir", d, "--vehicle", "car-1", "--json"], capsys)
    assert [b["version"] for b in json.loads(out)] == ["k1"]
