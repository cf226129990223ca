"""Output storage for unattended runs: storage errors reported once, orphaned temp files recovered, and a
guard that keeps recordings within a quota and the disk from filling.

- ``StorageErrors``: every output writer (annotated video, JSONL events, actions such as clips, the run
  summary) reports a failed write here. A storage error (ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EFBIG, EIO) sets
  the ``storage`` condition to ERROR on /diagnostics with the file and the reason, logs one line when it
  starts and at most one per ``log_every_s`` while it lasts (a full disk fails every frame: the log must not
  become the next thing filling it), and then either lets the pipeline go on without that output (``degrade``:
  detection, tracking and ROS events continue) or fails the run (``stop``: exit code 1). A write that succeeds
  again clears it.
- ``recover_orphans``: a process killed before it finished its outputs leaves hidden temp files
  (``.annotated.<pid>-<n>.tmp.mp4``); on the next start they are cut to their last complete fragment / line and
  renamed to ``annotated.recovered-<pid>.mp4``, logged, never deleted.
- ``StorageGuard``: on a timer thread (never per frame), deletes the oldest recordings (video files matching
  the recorders' names, never events or the file being written) while they exceed ``quota_mb`` or the
  folder's free space is below ``min_free_mb``; WARN (``disk_space``) when free space is below twice the
  minimum, before the disk is actually full.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_vision.core.actions import jsonl, video
from edge_vision.core.actions.atomic import is_locked, parse_temp_name
from edge_vision.core.errors import ConfigError

if TYPE_CHECKING:
    from edge_vision.core.runtime.health import Health

__all__ = [
    "POLICIES",
    "StorageErrors",
    "StorageGuard",
    "check_writable",
    "describe",
    "recover_orphans",
    "storage_errno",
]

log = logging.getLogger(__name__)

POLICIES = ("degrade", "stop")
REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
    errno.EIO: "I/O error",
}
MB = 1024 * 1024
# Health levels (runtime/health.py). Not imported from there: runtime/__init__ imports build.py, which imports
# this module, so importing runtime here first would be circular.
OK, WARN, ERROR = 0, 1, 2


def storage_errno(exc: BaseException | None) -> int | None:
    """The errno of a storage failure in ``exc`` or its causes (a ``ConfigError`` wrapping an ``OSError``;
    PyAV's ``av.error.OSError`` carries the errno), else None."""
    seen = 0
    while exc is not None and seen < 8:
        code = getattr(exc, "errno", None)
        if isinstance(exc, OSError) and code in REASONS:
            return int(code)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def describe(code: int) -> str:
    """``disk full (ENOSPC)``."""
    return f"{REASONS.get(code, os.strerror(code))} ({errno.errorcode.get(code, code)})"


def check_writable(folder: str | os.PathLike[str], where: str) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it; else a one-line ``ConfigError``
    naming ``where`` (the parameter) and the folder. Run before any work, so an unwritable output folder is a
    configuration error (exit 2) rather than a failure per frame."""
    path = Path(folder or ".")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".edge_vision_write_test.{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        reason = describe(exc.errno) if exc.errno in REASONS else (exc.strerror or str(exc))
        raise ConfigError(f"{where}: output folder {str(path)!r} is not writable: {reason}") from exc
    return path


@dataclass
class _Failure:
    code: int
    consequence: str
    count: int
    since: float
    logged_at: float
    unlogged: int = 0


class StorageErrors:
    """Storage failures of one process's output writers (thread-safe). ``failed`` -> True when the error was
    a storage error and has been handled (reported; the caller goes on without that write); False: not a
    storage error, the caller raises it as before."""

    def __init__(self, health: Health | None = None, policy: str = "degrade", *, log_every_s: float = 30.0) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"pipeline.on_storage_error must be one of {list(POLICIES)}, got {policy!r}")
        self.health = health
        self.policy = policy
        self.log_every_s = log_every_s
        self._lock = threading.Lock()
        self._failing: dict[str, _Failure] = {}
        self._history: dict[str, dict[str, Any]] = {}  # every path that ever failed, for the run summary

    def failed(self, path: str, exc: BaseException, consequence: str = "") -> bool:
        code = storage_errno(exc)
        if code is None:
            return False
        now = time.monotonic()
        with self._lock:
            entry = self._failing.get(path)
            first = entry is None
            if entry is None:
                entry = self._failing[path] = _Failure(code, consequence, 0, now, now)
            entry.count += 1
            entry.code, entry.consequence = code, consequence or entry.consequence
            due = not first and now - entry.logged_at >= self.log_every_s
            unlogged = entry.unlogged
            if due:
                entry.logged_at, entry.unlogged = now, 0
            elif not first:
                entry.unlogged += 1
            record = self._history.setdefault(path, {"failed_writes": 0})
            record["failed_writes"] += 1
            record["error"] = describe(code)
            if entry.consequence:
                record["consequence"] = entry.consequence
            message = self._message()
        reason = f"{path}: {describe(code)}" + (f", {entry.consequence}" if entry.consequence else "")
        if first:
            then = "the run stops (pipeline.on_storage_error: stop)" if self.policy == "stop" else "going on without it"
            log.error("storage: %s; %s", reason, then)
        elif due:
            log.error("storage: %s: still failing (%d more failed writes since the last report)", reason, unlogged + 1)
        if self.health is not None:
            self.health.condition("storage", ERROR, message)
            if self.policy == "stop":
                self.health.fail(f"storage: {reason} (pipeline.on_storage_error: stop)")
        return True

    def recovered(self, path: str) -> None:
        """A write to ``path`` succeeded (cheap when it never failed: called per write)."""
        if path not in self._failing:
            return
        with self._lock:
            entry = self._failing.pop(path, None)
            if entry is None:
                return
            message = self._message()
        log.warning("storage: %s writable again after %d failed writes", path, entry.count)
        if self.health is not None:
            self.health.condition("storage", ERROR if message else OK, message)

    def _message(self) -> str:
        return "; ".join(
            f"{path}: {describe(f.code)}" + (f", {f.consequence}" if f.consequence else "")
            for path, f in self._failing.items()
        )

    @property
    def failing(self) -> list[str]:
        with self._lock:
            return list(self._failing)

    def summary(self) -> dict[str, Any]:
        """For summary.json: the policy and every file that failed (reason, failed writes, consequence)."""
        with self._lock:
            return {"policy": self.policy, "errors": {p: dict(r) for p, r in self._history.items()}}


# -- recovery ------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def recover_orphans(folder: str | os.PathLike[str]) -> list[Path]:
    """Give the temp files of dead writers in ``folder`` a visible name; returns the new paths.

    A temp file is an orphan when no live process holds its lock (``atomic.lock``) and its pid is not that of
    another live process (pid reuse by a restarted container is covered by the lock). An MP4 is cut after its
    last complete fragment, a JSONL file after its last complete line; each is renamed to
    ``<stem>.recovered-<pid><suffix>`` and logged. Nothing is deleted."""
    root = Path(folder or ".")
    recovered: list[Path] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return recovered
    for entry in entries:
        name = parse_temp_name(entry.name)
        if name is None or not entry.is_file():
            continue
        if (name.pid != os.getpid() and _pid_alive(name.pid)) or is_locked(entry):
            continue
        target = root / f"{name.stem}.recovered-{name.pid}{name.suffix}"
        if target.exists():
            target = root / f"{name.stem}.recovered-{name.pid}-{name.serial}{name.suffix}"
        try:
            size = entry.stat().st_size
            if name.suffix.lower() in video.MP4_SUFFIXES:
                playable = video.repair(entry)
                note = f"{video.mp4_fragments(entry)} complete fragments" if playable else "NOT playable (no fragment)"
            elif name.suffix == ".jsonl":
                kept = jsonl.repair(entry)
                note = f"{kept} of {size} bytes (complete lines)"
            else:
                note = f"{size} bytes, as it was"
            os.replace(entry, target)
        except OSError as exc:
            log.error("cannot recover %s (left by process %d): %s", entry, name.pid, exc)
            continue
        log.warning(
            "recovered %s left by process %d (ended before finishing it) as %s: %s", entry.name, name.pid, target, note
        )
        recovered.append(target)
    return recovered


# -- the guard -----------------------------------------------------------------------------------------------


class StorageGuard:
    """Keeps the recordings in ``folder`` (files whose name matches ``patterns``) within ``quota_mb`` and the
    folder's file system above ``min_free_mb`` free, deleting the oldest recordings first (by modification
    time); 0 turns either limit off. Files being written are hidden temp files and never match; events
    (``*.jsonl``) never match a recording pattern. ``check`` runs once (tests, start-up); ``start`` runs it
    every ``check_s`` seconds on its own thread until ``close``."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        patterns: Sequence[str],
        *,
        quota_mb: float = 0.0,
        min_free_mb: float = 0.0,
        check_s: float = 5.0,
        health: Health | None = None,
    ) -> None:
        self.folder = Path(folder or ".")
        self.patterns = tuple(patterns)
        self.quota = quota_mb * MB
        self.min_free = min_free_mb * MB
        self.check_s = check_s
        self.health = health
        self.deleted: list[str] = []
        self.deleted_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def _scan(self) -> tuple[list[tuple[float, int, Path]], int]:
        """(recordings oldest first as (mtime, size, path), bytes of recordings being written)."""
        done: list[tuple[float, int, Path]] = []
        writing = 0
        for entry in os.scandir(self.folder):
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                temp = parse_temp_name(entry.name)
                if temp is not None:
                    if self._matches(temp.visible):
                        writing += entry.stat().st_size
                elif not entry.name.startswith(".") and self._matches(entry.name):
                    stat = entry.stat()
                    done.append((stat.st_mtime, stat.st_size, Path(entry.path)))
            except FileNotFoundError:  # deleted meanwhile
                continue
        done.sort()
        return done, writing

    def check(self) -> list[Path]:
        """One pass: delete what the limits ask for, update the ``disk_space`` condition."""
        files, writing = self._scan()
        used = writing + sum(size for _, size, _ in files)
        free = shutil.disk_usage(self.folder).free
        deleted: list[Path] = []
        while files and ((self.quota and used > self.quota) or (self.min_free and free < self.min_free)):
            _, size, path = files.pop(0)
            why = (
                f"recordings {used / MB:.1f} MB > quota {self.quota / MB:g} MB"
                if self.quota and used > self.quota
                else f"{free / MB:.1f} MB free < minimum {self.min_free / MB:g} MB"
            )
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error("storage guard: cannot delete %s: %s", path, exc)
                break
            used -= size
            free += size
            deleted.append(path)
            self.deleted.append(str(path))
            self.deleted_bytes += size
            log.warning("storage guard: deleted %s (%.1f MB, the oldest recording): %s", path, size / MB, why)
        if deleted:
            free = shutil.disk_usage(self.folder).free
        problems = []
        if self.min_free and free < 2 * self.min_free:
            problems.append(f"{self.folder}: {free / MB:.1f} MB free (minimum {self.min_free / MB:g} MB)")
        if self.quota and used > self.quota:  # nothing left to delete but the file being written
            problems.append(f"recordings in {self.folder} {used / MB:.1f} MB > quota {self.quota / MB:g} MB")
        if problems and self.deleted:
            problems.append(f"{len(self.deleted)} oldest recordings deleted so far")
        if self.health is not None:
            self.health.condition("disk_space", WARN if problems else OK, "; ".join(problems))
        return deleted

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ev-storage-guard", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.check()
                self._last_error = ""
            except Exception as exc:  # a folder gone, a file system error: report once, try again later
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    log.error("storage guard on %s: %s", self.folder, text)
                    self._last_error = text
            if self._stop.wait(self.check_s):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def summary(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "deleted": list(self.deleted),
            "deleted_mb": round(self.deleted_bytes / MB, 3),
        }


def guards_for(
    recordings: Iterable[tuple[str | os.PathLike[str], Sequence[str]]],
    pipeline: Any,
    health: Health | None,
    make: Callable[..., StorageGuard] = StorageGuard,
) -> list[StorageGuard]:
    """One guard per folder of ``recordings`` ((folder, name patterns) pairs) when the ``pipeline`` section
    sets a quota or a minimum of free space; none otherwise."""
    quota, min_free = pipeline["storage_quota_mb"], pipeline["storage_min_free_mb"]
    if not quota and not min_free:
        return []
    by_folder: dict[Path, list[str]] = {}
    for folder, patterns in recordings:
        by_folder.setdefault(Path(folder or "."), []).extend(patterns)
    return [
        make(
            folder,
            patterns,
            quota_mb=quota,
            min_free_mb=min_free,
            check_s=pipeline["storage_check_s"],
            health=health,
        )
        for folder, patterns in by_folder.items()
    ]
