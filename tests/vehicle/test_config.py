"""vehicle.toml: defaults, every table, and errors that name the bad key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import ConfigError
from vehicle.config.tree import load_config

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


INFERENCE = """
[inference]
sub_endpoints = ["tcp://127.0.0.1:5555"]
pub_endpoint = "tcp://*:5570"
max_rate_hz = 5.0
[inference.model]
provider = "cpu"
"""


def test_inference_table_nests_the_process_config_and_feeds_the_recorder(tmp_path: Path) -> None:
    path = tmp_path / "vehicle.toml"
    path.write_text(DEMO)
    assert load_config(path).inference is None
    assert load_config(path).recorder_endpoints == ("tcp://127.0.0.1:5555",)
    path.write_text(DEMO + INFERENCE)
    cfg = load_config(path)
    assert cfg.inference is not None and cfg.inference.max_rate_hz == 5.0
    assert cfg.inference.model.provider == "cpu" and cfg.inference.camera_topics == ("camera/",)
    # A wildcard bind is reached on loopback, and an endpoint listed in [sources] too is connected once.
    assert cfg.recorder_endpoints == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5570")
    path.write_text(DEMO.replace('endpoints = ["tcp://127.0.0.1:5555"]',
                                 'endpoints = ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:5570"]') + INFERENCE)
    assert load_config(path).recorder_endpoints == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5570")


@pytest.mark.parametrize("patch, key, expected", [
    ("max_rate_hz = 5.0", "max_rate_hz = -1.0", "vehicle.toml: [inference] max_rate_hz must be >= 0"),
    ("max_rate_hz = 5.0", "max_rate_hz = 5.0\nbogus = 1", "unknown key 'inference.bogus'"),
    ('provider = "cpu"', 'provider = "tpu"', "[inference.model] provider must be auto, cpu or cuda"),
    ('provider = "cpu"', 'threads = 2', "unknown key 'inference.model.threads'"),
    ("max_rate_hz = 5.0", 'scores_topic = "scores"', "inference.scores_topic 'scores' differs from "
                                                      "topics.model_scores 'model/scores'"),
    ('sub_endpoints = ["tcp://127.0.0.1:5555"]', 'sub_endpoints = ["tcp://127.0.0.1:6000"]',
     "inference.sub_endpoints: 'tcp://127.0.0.1:6000' is not among sources.endpoints"),
    ('pub_endpoint = "tcp://*:5570"', 'pub_endpoint = "tcp://0.0.0.0:5555"',
     "inference.pub_endpoint 'tcp://0.0.0.0:5555' is also one of inference.sub_endpoints"),
])
def test_bad_inference_values_are_named(tmp_path: Path, patch: str, key: str, expected: str) -> None:
    path = tmp_path / "vehicle.toml"
    path.write_text(DEMO + INFERENCE.replace(patch, key))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)


def test_each_process_gets_its_own_metrics_port(tmp_path: Path) -> None:
    path = tmp_path / "vehicle.toml"
    path.write_text(DEMO.replace("port = 0", "port = 9101\nuploader_port = 9102\ninference_port = 9103"))
    m = load_config(path).metrics
    assert (m.port, m.uploader_port, m.inference_port) == (9101, 9102, 9103)
    path.write_text(DEMO.replace("port = 0", "port = 9101\ninference_port = 9101"))
    with pytest.raises(ConfigError, match=r"\[metrics\] port, uploader_port and inference_port must differ"):
        load_config(path)
    path.write_text(DEMO.replace("port = 0", "uploader_port = 70000"))
    with pytest.raises(ConfigError, match=r"\[metrics\] uploader_port must be within 0..65535"):
        load_config(path)


def test_loading_the_config_does_not_import_onnx_runtime() -> None:
    """Only the infer process pays for ONNX Runtime (and PyAV); the recorder and the uploader start
    without them. A fresh interpreter, since this one has loaded them for other tests."""
    code = ("import sys, json; import vehicle.config.tree, vehicle.service, vehicle.cli; "
            "print(json.dumps(sorted(m for m in ('onnxruntime', 'av') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []
    probe = subprocess.run([sys.executable, "-c", "import sys, vehicle.inference.process; print('onnxruntime' in sys.modules)"],
                           capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.strip() == "True", "the probe sees the import when it happens"
