"""A full disk under a real daemon: the PATCH that hits it gets 507 with a JSON reason, the bytes
acknowledged before it are kept, it is counted, the daemon keeps serving, and once space is back
the client resumes and the snapshot is stored whole.

The disk is a real 4 MiB tmpfs mounted over ``uploads/`` in a private mount namespace of the
daemon (``unshare -m``, needs root); where mounts are not allowed, the daemon runs under
``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored instead (writes past the limit fail with ``EFBIG``) and
"space comes back" by raising the limit of the running process with ``prlimit``.
"""

from __future__ import annotations

import base64
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from cloud_ingest import auth
from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.objects.local import LocalObjectStore
from shared.snapshot import sha256_file
from tests.cloud_ingest.conftest import free_port, headers, metric, open_config_db
from tests.cloud_ingest.test_crash import REPO, Daemon

TMPFS_BYTES = 4 * 1024 * 1024


def _mounts_allowed() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


class SmallDiskDaemon(Daemon):
    """The daemon with only ``free`` bytes of room for uploads; :meth:`free_space` gives it more."""

    def __init__(self, data_dir: Path, port: int, log: Path, free: int) -> None:
        super().__init__(data_dir, port, log)
        self.free = free
        self.mode = "tmpfs" if _mounts_allowed() else "rlimit"

    def start(self) -> None:
        uploads = self.data_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        serve = [sys.executable, "-m", "cloud_ingest.cli", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        pre: Callable[[], None] | None = None
        if self.mode == "tmpfs":
            ballast = TMPFS_BYTES - self.free
            script = (f'mount -t tmpfs -o size={TMPFS_BYTES} tmpfs "$1" && '
                      f'head -c {ballast} /dev/zero > "$1/ballast" && shift && exec "$@"')
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(uploads), *serve]
        else:
            cmd = serve

            def pre() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (self.free, resource.RLIM_INFINITY))

        self.starts += 1
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out, preexec_fn=pre)
        self._wait_ready()

    def free_space(self) -> None:
        assert self.proc is not None
        if self.mode == "tmpfs":  # the daemon's own view of the mount, from outside its namespace
            os.unlink(f"/proc/{self.proc.pid}/root{self.data_dir}/uploads/ballast")
        else:
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)


@pytest.fixture
def small_disk(tmp_path: Path, snapshot: tuple[Path, str]) -> Iterator[SmallDiskDaemon]:
    d = SmallDiskDaemon(tmp_path / "cloud", free_port(), tmp_path / "daemon.log",
                        free=snapshot[0].stat().st_size // 2)
    db = open_config_db(CloudConfig(data_dir=d.data_dir))
    d.token = auth.register(db, "car-1")  # type: ignore[attr-defined]
    db.close()
    d.start()
    yield d
    d.kill()


def test_full_disk_is_507_keeps_acknowledged_bytes_and_the_client_resumes(
        small_disk: SmallDiskDaemon, snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    data = path.read_bytes()
    hdrs = headers("car-1", small_disk.token)  # type: ignore[attr-defined]
    url = small_disk.url
    meta = f"sha256 {base64.b64encode(sha.encode()).decode()}"
    r = requests.post(url + "/files/", headers={**hdrs, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    location = url + r.headers["Location"]
    chunk = len(data) // 8 + 1
    offset, answers = 0, []
    while offset < len(data):
        r = requests.patch(location, data=data[offset:offset + chunk], timeout=10, headers={
            **hdrs, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        answers.append(r.status_code)
        if r.status_code != 204:
            break
        offset = int(r.headers["Upload-Offset"])
    assert answers[-1] == 507 and set(answers[:-1]) == {204} and len(answers) > 1, answers
    body = r.json()
    assert body["error"] == "insufficient_storage" and "resume from HEAD" in body["detail"]
    assert ("No space left" in body["detail"]) == (small_disk.mode == "tmpfs")
    head = requests.head(location, headers=hdrs)
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == offset  # acknowledged bytes kept
    assert requests.get(url + "/healthz").status_code == 200  # still serving
    text = requests.get(url + "/metrics").text
    assert metric(text, "avdata_cloud_rejected_total", reason="insufficient_storage") == 1
    assert metric(text, "avdata_cloud_requests_total", method="PATCH", status="507") == 1

    small_disk.free_space()
    c = tus_client.TusClient(url + "/files/", headers={"X-Avdata-Vehicle": "car-1",
                                                       "Authorization": hdrs["Authorization"]})
    up = c.uploader(str(path), chunk_size=chunk, url=location, metadata={"sha256": sha})
    assert up.offset == offset  # tuspy asked (HEAD) and resumes after the acknowledged bytes
    up.upload()
    assert up.request is not None and up.request.status_code == 204
    sid = up.request.response_headers["x-avdata-segments"]
    db = open_config_db(CloudConfig(data_dir=small_disk.data_dir))
    try:
        row = db.get_segment(sid)
        assert row is not None
        assert sha256_file(LocalObjectStore(small_disk.data_dir / "store").path(row.raw_key)) == sha
    finally:
        db.close()
    print(f"disk full simulated with: {small_disk.mode}")
