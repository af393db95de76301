"""Crash-safe snapshots of an index directory: generations, each made visible by one rename.

Layout: ``<dir>/CURRENT`` names the live generation (``gen-000007``); each generation is a
directory of files. :func:`write_generation` writes every file into ``gen-N.tmp``, fsyncs the
files and the directory, renames it to ``gen-N``, then replaces ``CURRENT`` (temp file, fsync,
rename, fsync of ``<dir>``) and only then removes older generations. A crash at any instant leaves
either the previous generation named by ``CURRENT`` or the new one: a ``.tmp`` directory or a
generation that ``CURRENT`` does not name is debris, removed by the next write.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from downstream.mining.errors import IndexCorrupt

CURRENT = "CURRENT"
MANIFEST = "manifest.json"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_generation(directory: Path) -> Path | None:
    """The live generation directory, or ``None`` when nothing was ever written there."""
    pointer = directory / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    gen = directory / name
    if not name.startswith("gen-") or not (gen / MANIFEST).is_file():
        raise IndexCorrupt(f"{pointer} names {name!r}, which is not a complete generation; restore the directory "
                           "from a backup or rebuild the index")
    return gen


def write_generation(directory: Path, manifest: dict[str, object], files: dict[str, Callable[[Path], None]]) -> Path:
    """Write a new generation: ``files`` maps a file name to a function that writes that path.

    The manifest records each file's size, checked by :func:`read_manifest`."""
    directory.mkdir(parents=True, exist_ok=True)
    live = current_generation(directory)
    number = int(live.name.split("-")[1]) + 1 if live else 1
    final = directory / f"gen-{number:06d}"
    tmp = directory / f"{final.name}.tmp"
    for debris in (tmp, final):  # left by a crash before CURRENT named them
        shutil.rmtree(debris, ignore_errors=True)
    tmp.mkdir()
    sizes: dict[str, int] = {}
    for name, write in files.items():
        write(tmp / name)
        _fsync_path(tmp / name)
        sizes[name] = (tmp / name).stat().st_size
    with open(tmp / MANIFEST, "w") as fh:
        json.dump({**manifest, "files": sizes}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_path(tmp)
    tmp.rename(final)
    pointer_tmp = directory / f"{CURRENT}.tmp"
    with open(pointer_tmp, "w") as fh:
        fh.write(final.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    pointer_tmp.rename(directory / CURRENT)
    _fsync_path(directory)
    for old in directory.glob("gen-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_manifest(gen: Path) -> dict[str, object]:
    """The generation's manifest, after checking that every file it lists has its recorded size."""
    try:
        manifest: dict[str, object] = json.loads((gen / MANIFEST).read_text())
        sizes = manifest["files"]
        if not isinstance(sizes, dict):
            raise ValueError("'files' is not a mapping")
        for name, size in sizes.items():
            if (gen / name).stat().st_size != size:
                raise IndexCorrupt(f"{gen / name} has {(gen / name).stat().st_size} bytes, the manifest says {size}; "
                                   "the index directory is damaged, rebuild it")
    except (OSError, ValueError, KeyError) as exc:
        raise IndexCorrupt(f"{gen}: unreadable index generation ({exc}); rebuild the index") from None
    return manifest
