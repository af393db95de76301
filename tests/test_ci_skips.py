"""No silent skips in CI: a test whose server is missing skips with its reason locally, and fails
when ``CI`` is set. Checked by running a real back-end test in a child pytest against a port where
no PostgreSQL listens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/cloud_ingest/storage/test_metadata.py::test_vehicles[postgres]"


def _run(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["AVDATA_TEST_PG_DSN"] = "host=127.0.0.1 port=9 user=postgres dbname=test connect_timeout=1"
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TEST],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_server_skips_with_its_reason_outside_ci() -> None:
    out = _run(ci=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and "PostgreSQL at host=127.0.0.1 port=9" in out.stdout  # -rs prints it


def test_missing_server_fails_under_ci() -> None:
    out = _run(ci=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 error" in out.stdout and "CI is set" in out.stdout  # a fixture that fails is an error
