"""Child process of ``test_upload_power_loss.py``: the real ``avdata-vehicle upload`` service.

``python -m tests.vehicle.uploader_child CONFIG [N before|after]`` runs ``vehicle.cli.main``
unchanged; given ``N`` and a phase, the process SIGKILLs itself right before or right after the
N-th state change of the upload queue (start, offset, reset, defer, done, fail) is committed: a
power cut at the worst instants of a queue transition, chosen by the test's seed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from vehicle import cli
from vehicle.upload.queue import UploadQueue


def _arm(n: int, phase: str) -> None:
    real = UploadQueue._update
    seen = [0]

    def update(self: UploadQueue, snapshot_id: str, sets: str, args: tuple[object, ...]) -> None:
        seen[0] += 1
        if seen[0] == n and phase == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, snapshot_id, sets, args)
        if seen[0] == n and phase == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    UploadQueue._update = update  # type: ignore[method-assign]


def main() -> int:
    config = Path(sys.argv[1])
    if len(sys.argv) == 4:
        _arm(int(sys.argv[2]), sys.argv[3])
    return cli.main(["--log-level", "warning", "upload", "--config", str(config)])


if __name__ == "__main__":
    sys.exit(main())
