"""``enrich.toml``: the example loads, bad keys are named, map paths are taken from the file's folder,
the fingerprint follows the settings and the maps' bytes; the unit file runs a command the parser takes."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from cloud_ingest.cli.main import build_parser
from downstream.cli import EXTENSIONS
from downstream.enrich.config import EnrichConfig, fingerprint, load_enrich_config
from shared.config import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_the_example_loads_with_its_map_beside_it() -> None:
    cfg = load_enrich_config(REPO / "config" / "enrich.example.toml")
    assert cfg.queue == "nats" and cfg.metrics_port == 9111 and cfg.consumer_name == "enrich-v1"
    assert cfg.maps[0].format == "lanelet2" and cfg.maps[0].path == REPO / "config" / "maps" / "karlsruhe.osm"
    assert load_enrich_config(None) == EnrichConfig()


def test_bad_keys_and_values_are_named(tmp_path: Path) -> None:
    path = tmp_path / "enrich.toml"
    path.write_text("[enrich]\nqueue = \"kafka\"\n")
    with pytest.raises(ConfigError, match=r"\[enrich\] queue must be one of outbox, nats"):
        load_enrich_config(path)
    path.write_text("[enrich]\nradius = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'enrich\.radius'"):
        load_enrich_config(path)
    path.write_text("[enrich]\nmap_radius_m = \"far\"\n")
    with pytest.raises(ConfigError, match=r"enrich\.map_radius_m: expected a number"):
        load_enrich_config(path)
    assert load_enrich_config(path, {"map_radius_m": 20.0}).map_radius_m == 20.0  # a flag wins over the file


def test_the_fingerprint_follows_what_decides_the_outputs() -> None:
    base = fingerprint(EnrichConfig(), [b"map"])
    assert fingerprint(EnrichConfig(metrics_port=1, queue="nats", version=7), [b"map"]) == base
    assert fingerprint(EnrichConfig(map_radius_m=80.0), [b"map"]) != base
    assert fingerprint(EnrichConfig(), [b"another map"]) != base


def test_the_unit_runs_a_command_the_parser_takes() -> None:
    unit = (REPO / "systemd" / "avdata-cloud-enrich.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert "avdata-cloud.service" in settings["After"] and settings["ProtectSystem"] == "strict"
    assert settings["NoNewPrivileges"] == "yes" and settings["PrivateTmp"] == "yes" and "MemoryMax" in settings
    argv = shlex.split(settings["ExecStart"].replace("${CONFIGURATION_DIRECTORY}", "/etc/avdata")
                       .replace("${STATE_DIRECTORY}", "/var/lib/avdata-cloud"))
    assert argv[0] == "avdata-cloud"
    args = build_parser(extensions=EXTENSIONS).parse_args(argv[1:])
    assert (args.command, args.action) == ("enrich", "run") and not args.until_idle and not args.once
    assert args.enrich_config == Path("/etc/avdata/enrich.toml")
