"""vehicle.toml: defaults, every table, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError
from vehicle.config import load_config

DEMO = """
vehicle_id = "demo-car"
data_dir = "var/vehicle"
software_version = "0.1.0"
[sources]
endpoints = ["tcp://127.0.0.1:5555"]
[buffer]
max_age_s = 300.0
max_bytes = 1073741824
[triggers.hard_brake]
kind = "hard_brake"
decel_mps2 = 4.0
min_duration_s = 0.2
pre_s = 30.0
post_s = 10.0
cooldown_s = 20.0
priority = 80
[uploader]
url = "http://127.0.0.1:8080/files/"
token = "abc"
chunk_bytes = 1048576
[metrics]
port = 0
"""


def test_the_interface_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "vehicle.toml"
    path.write_text(DEMO)
    cfg = load_config(path)
    assert cfg.vehicle_id == "demo-car" and cfg.snapshots_dir == Path("var/vehicle/snapshots")
    assert cfg.triggers["hard_brake"].pre_s == 30.0 and cfg.triggers["hard_brake"].priority == 80
    assert cfg.sources.endpoints == ("tcp://127.0.0.1:5555",) and cfg.uploader.token == "abc"


@pytest.mark.parametrize("patch, key", [
    ('pre_s = 30.0', 'pre_s = -1.0', ),
    ('kind = "hard_brake"', 'kind = "hard_brake"\nfoo = 1'),
    ('kind = "hard_brake"', 'kind = "braking"'),
    ('max_bytes = 1073741824', 'max_bytes = 0'),
    ('chunk_bytes = 1048576', 'chunk_bytes = "big"'),
    ('vehicle_id = "demo-car"', 'vehicle_id = ""'),
    ('endpoints = ["tcp://127.0.0.1:5555"]', 'endpoints = ["127.0.0.1:5555"]'),
])
def test_bad_values_are_named(tmp_path: Path, patch: str, key: str) -> None:
    path = tmp_path / "vehicle.toml"
    path.write_text(DEMO.replace(patch, key))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith("vehicle.toml:")
    expected = {"pre_s": "[triggers.hard_brake] pre_s", "foo": "triggers.hard_brake.foo",
                "braking": "[triggers.hard_brake] kind", "max_bytes": "[buffer] max_bytes",
                "chunk_bytes": "uploader.chunk_bytes", "vehicle_id": "vehicle_id is required",
                "endpoints": "[sources] endpoints"}
    assert next(v for k, v in expected.items() if k in key) in msg
