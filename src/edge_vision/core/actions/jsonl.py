"""``JsonlEventLog``: a run's events as one JSON object per line; the file is replaced when the run ends.

Never a partial line: each batch of whole lines goes to the kernel in one ``write``, and a short write or an
error (ENOSPC...) truncates the file back to the end of the last complete line before the error is raised.
``repair`` does the same for a file a dead process left (power cut mid-write)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from edge_vision.core.actions.atomic import fsync_dir, lock, publish, temp_path
from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import FrameMeta

__all__ = ["JsonlEventLog", "event_record", "iso_utc", "repair"]

log = logging.getLogger(__name__)


def iso_utc(stamp_ns: int) -> str:
    """``stamp_ns`` (ns since the Unix epoch) as ISO-8601 UTC with microseconds, e.g. ``2024-05-01T12:00:00.250000Z``.

    Integer arithmetic: a float of today's ns count has only ~0.25 us resolution."""
    seconds, ns = divmod(int(stamp_ns), 1_000_000_000)
    # timezone.utc, not datetime.UTC: setup.py still admits Python 3.10 (ROS 2 Humble).
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)  # noqa: UP017
    return moment.replace(microsecond=ns // 1000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_record(event: Event) -> dict[str, Any]:
    """``Event.to_dict()`` plus ``time`` (ISO-8601 UTC of the frame stamp)."""
    record = event.to_dict()
    record["time"] = iso_utc(event.stamp_ns)
    return record


def repair(path: Path) -> int:
    """Truncate ``path`` after its last complete line (a newline); returns the bytes kept. Reads backwards
    from the end in blocks: a months-long log is not read whole."""
    with path.open("rb+") as f:
        end = f.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - 65536)
            f.seek(start)
            block = f.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep < end:
            f.truncate(keep)
    return keep


def _plain(value: Any) -> Any:
    # Plugin rules may put numpy scalars or arrays in events; json cannot encode them as they are.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"event field of type {type(value).__name__} is not JSON serialisable: {value!r}")


class JsonlEventLog:
    """Writes one JSON line per event; ``path`` gets this run's events, and only this run's, at ``close``.

    path: relative paths are relative to the context ``output_dir`` (parent folders are created). Lines go
        to a hidden temp file beside it (``atomic.temp_path``, locked while open), renamed over ``path`` by
        ``close``: the previous run's log stays intact until this run finishes, and is replaced, never appended
        to. A process killed before ``close`` leaves the temp file; the next start renames it to
        ``<stem>.recovered-<pid>.jsonl`` (``storage.recover_orphans``).
    flush_every: hand lines to the OS every N events, all N in one ``write``; the default 1 means a crash of
        this process loses nothing already handled (the lines are in the temp file). ``close`` fsyncs before
        renaming.

    A write that fails (disk full, read-only, quota) raises the ``OSError`` after truncating the file to its
    last complete line; the events of that batch are counted in ``lost`` and the next ``handle`` tries again
    (the pipeline's ``ActionStage`` reports it once and goes on: ``pipeline.on_storage_error``).
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("path", "events.jsonl", "JSONL file of this run's events (relative to the output folder)"),
        Param("flush_every", 1, "flush to the OS every N events (1 = a crash loses nothing handled)", min=1),
    )

    def __init__(
        self, path: str = "events.jsonl", flush_every: int = 1, output_dir: str | os.PathLike[str] = "."
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigError(f"JSONL event log: path must be a non-empty file path, got {path!r}")
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ConfigError(
                f"JSONL event log {str(path)!r}: flush_every must be an integer >= 1, got {flush_every!r}"
            )
        self.path = Path(output_dir) / path  # an absolute ``path`` stays as it is
        self.flush_every = flush_every
        self.written = 0  # events in the file
        self.lost = 0  # events whose write failed (storage errors)
        self._pending: list[bytes] = []
        self._offset = 0  # end of the last complete line
        self._fd = -1
        if self.path.is_dir():
            raise ConfigError(f"JSONL event log {str(self.path)!r} is a folder, not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.temp_path = temp_path(self.path)
            # Opened now, not on the first event, so a bad path fails at startup rather than mid-run.
            self._fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            lock(self._fd)
            fsync_dir(self.path.parent)  # the temp file's name survives a power cut: it can be recovered
        except OSError as exc:
            raise ConfigError(f"cannot open JSONL event log {str(self.path)!r} for writing: {exc}") from exc

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def handle(self, events: Sequence[Event], meta: FrameMeta, tracks: Detections) -> None:
        if self._fd < 0:
            raise RuntimeError(f"JSONL event log {str(self.path)!r} is closed; cannot write {len(events)} events")
        for event in events:
            line = json.dumps(event_record(event), default=_plain, separators=(",", ":")) + "\n"
            self._pending.append(line.encode("utf-8"))
            if len(self._pending) >= self.flush_every:
                self._flush()

    def _flush(self) -> None:
        """Write the pending lines in one ``write``; on failure truncate back to the last complete line."""
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        data = b"".join(lines)
        start = self._offset
        try:
            done = 0
            while done < len(data):  # a short write (the disk filled up mid-line) is retried, then fails
                done += os.write(self._fd, data[done:])
        except OSError:
            self.lost += len(lines)
            try:
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            except OSError as exc:  # cannot even truncate (a device gone): the file is what it is
                log.error("JSONL event log %s: cannot truncate to its last complete line: %s", self.temp_path, exc)
            raise
        self._offset = start + len(data)
        self.written += len(lines)

    def close(self) -> None:
        """Flush, fsync, rename the temp file over ``path``, fsync the folder; safe to call twice.

        If this fails, ``path`` is left as it was and the temp file keeps this run's lines; a failed write of
        the last lines still publishes the complete ones, then raises."""
        if self._fd < 0:
            return
        error: OSError | None = None
        try:
            self._flush()
        except OSError as exc:
            error = exc
        try:
            os.fsync(self._fd)
            publish(self.temp_path, self.path)
        finally:
            os.close(self._fd)  # after the rename: the lock covers the file until it has its final name
            self._fd = -1
        if error is not None:
            raise error

    def abort(self) -> None:
        """End a failed run: ``path`` is left as it was; this run's lines stay in the temp file (logged)."""
        if self._fd < 0:
            return
        try:
            self._flush()
        except OSError as exc:
            log.debug("JSONL event log %s: last lines not written: %s", self.temp_path, exc)
        os.close(self._fd)
        self._fd = -1
        log.warning(
            "JSONL event log %s not replaced; this run's %d events are in %s", self.path, self.written, self.temp_path
        )

    def __enter__(self) -> JsonlEventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
