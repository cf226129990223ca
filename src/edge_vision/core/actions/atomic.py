"""Write-then-rename: a run's output file replaces the previous run's only once the run has finished.

A writer writes to ``temp_path(path)`` (a hidden sibling, so the rename stays on one filesystem and is
atomic), then ``publish`` renames it over ``path``. Until then the previous file is untouched: a crash leaves
it as it was, plus the hidden temp file with what this run had written; ``storage.recover_orphans`` gives
such a file a visible name on the next start. A writer holds an exclusive ``flock`` on its temp file while it
writes (``lock``): the kernel drops it when the process dies, even by SIGKILL, so "locked" means "someone is
writing it" in any pid namespace (a container restarted with the same pid 1 included).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["TempName", "fsync_dir", "fsync_path", "is_locked", "lock", "parse_temp_name", "publish", "temp_path"]

_serial = itertools.count()
_TEMP = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)-(?P<serial>\d+)\.tmp(?P<suffix>\.[^.]+)?$")


class TempName(NamedTuple):
    """What ``temp_path`` put in a name: ``.annotated.4242-0.tmp.mp4`` -> ("annotated", 4242, 0, ".mp4")."""

    stem: str
    pid: int
    serial: int
    suffix: str

    @property
    def visible(self) -> str:
        return f"{self.stem}{self.suffix}"


def parse_temp_name(name: str) -> TempName | None:
    """The parts of a ``temp_path`` name, or None for any other name."""
    match = _TEMP.match(name)
    if match is None:
        return None
    return TempName(match["stem"], int(match["pid"]), int(match["serial"]), match["suffix"] or "")


def temp_path(path: Path) -> Path:
    """A hidden sibling of ``path``, unique per process and writer, keeping the suffix (FFmpeg picks the
    container format from it): ``out/annotated.mp4`` -> ``out/.annotated.4242-0.tmp.mp4``.

    The serial number keeps two writers of one path in one process from sharing a temp file; the pid keeps
    concurrent processes apart; a name that exists already (left by an earlier process that had this pid: pid 1
    in a restarted container) is skipped, never overwritten."""
    while True:
        candidate = path.with_name(f".{path.stem}.{os.getpid()}-{next(_serial)}.tmp{path.suffix}")
        if not os.path.lexists(candidate):
            return candidate


def lock(fd: int) -> None:
    """Hold an exclusive lock on the open file ``fd`` until it is closed (or the process dies). Best effort: a
    file system without flock (some network mounts) leaves recovery to the pid check."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def is_locked(path: Path) -> bool:
    """Whether some live process holds ``lock`` on ``path`` (this one included, through another descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without flock: fall back on the pid check of the caller
        return False
    finally:
        os.close(fd)  # closing releases the probe's own lock
    return False


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
