"""Write-then-rename: a run's output file replaces the previous run's only once the run has finished.

A writer writes to ``temp_path(path)`` (a hidden sibling, so the rename stays on one filesystem and is
atomic), then ``publish`` renames it over ``path``. Until then the previous file is untouched: a crash leaves
it as it was, plus the hidden temp file with what this run had written.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

__all__ = ["fsync_dir", "fsync_path", "publish", "temp_path"]

_serial = itertools.count()


def temp_path(path: Path) -> Path:
    """A hidden sibling of ``path``, unique per process and writer, keeping the suffix (FFmpeg picks the
    container format from it): ``out/annotated.mp4`` -> ``out/.annotated.4242-0.tmp.mp4``.

    The serial number keeps two writers of one path in one process from sharing a temp file; the pid keeps
    concurrent processes apart."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{next(_serial)}.tmp{path.suffix}")


def fsync_path(path: Path) -> None:
    """fsync a file that its writer has already closed (e.g. one FFmpeg wrote)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power cut. Filesystems that cannot (EINVAL: some
    network and FUSE mounts) are skipped: the rename itself has happened."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def publish(temp: Path, path: Path) -> None:
    """Rename the finished, fsynced ``temp`` over ``path`` and fsync the folder."""
    os.replace(temp, path)
    fsync_dir(path.parent)
