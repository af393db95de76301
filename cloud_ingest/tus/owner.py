"""Which name a daemon uses in upload leases, so that its successor can take its leases at once.

A lease names its owner; a daemon that dies holding one (kill -9, power loss) would otherwise block
that upload until the lease runs out (``limits.lock_lease_s``, minutes). Each daemon therefore
takes a *slot* under ``<data_dir>/owners/``: an ``flock`` on ``slot-<n>.lock`` (the kernel drops
it the moment the process dies, however it dies) and the name in ``slot-<n>.id`` (a random UUID
written once). A daemon restarted on the same data directory takes the free slot, hence the same
name, hence the dead one's leases, while daemons running side by side hold different slots.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.snapshot import fsync_dir

MAX_SLOTS = 256


@dataclass
class OwnerSlot:
    """A held slot: ``name`` for leases; :meth:`close` releases it (process exit does too)."""

    name: str
    slot: int
    _fd: int

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _name(root: Path, slot: int) -> str:
    path = root / f"slot-{slot}.id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = root / f".slot-{slot}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(uuid.uuid4().hex)
    try:
        os.link(tmp, path)  # the first writer wins; a racing one reads the winner's name
        fsync_dir(root)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def claim_owner(data_dir: Path) -> OwnerSlot:
    """Take the lowest free slot under ``data_dir/owners``; raise ``RuntimeError`` if all are held."""
    root = data_dir / "owners"
    root.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(root / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return OwnerSlot(_name(root, slot), slot, fd)
    raise RuntimeError(f"all {MAX_SLOTS} owner slots under {root} are held by running daemons")
