"""Durable files: content hashes and the fsync-then-rename publication every writer uses.

A file is published by writing it under a temporary name, fsyncing it, renaming it over the
target (atomic on POSIX) and fsyncing the directory, so a crash leaves the old file or the new
one, never half of one.  Used by the Parquet lake, the published snapshot and the model registry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(tmp_file: Path, target: Path) -> None:
    """fsync the finished ``tmp_file``, rename it over ``target`` (atomic on POSIX), fsync the
    directory."""
    with open(tmp_file, "rb") as fh:
        os.fsync(fh.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_file, target)
    fsync_dir(target.parent)
