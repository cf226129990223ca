"""``JsonlEventLog``: a run's events as one JSON object per line; the file is replaced when the run ends."""

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

from edge_vision.core.actions.atomic import publish, temp_path
from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import FrameMeta

__all__ = ["JsonlEventLog", "event_record", "iso_utc"]

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
        to a hidden temp file beside it (``atomic.temp_path``), renamed over ``path`` by ``close``: the
        previous run's log stays intact until this run finishes, and is replaced, never appended to.
    flush_every: hand buffered lines to the OS every N events; the default 1 means a crash of this process
        loses nothing already handled (the lines are in the temp file). ``close`` fsyncs before renaming.
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
        self.temp_path = temp_path(self.path)
        self.flush_every = flush_every
        self.written = 0
        self._pending = 0
        if self.path.is_dir():
            raise ConfigError(f"JSONL event log {str(self.path)!r} is a folder, not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Opened now, not on the first event, so a bad path fails at startup rather than mid-run.
            self._file = self.temp_path.open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open JSONL event log {str(self.path)!r} for writing: {exc}") from exc

    @property
    def closed(self) -> bool:
        return self._file.closed

    def handle(self, events: Sequence[Event], meta: FrameMeta, tracks: Detections) -> None:
        if self._file.closed:
            raise RuntimeError(f"JSONL event log {str(self.path)!r} is closed; cannot write {len(events)} events")
        for event in events:
            self._file.write(json.dumps(event_record(event), default=_plain, separators=(",", ":")) + "\n")
            self.written += 1
            self._pending += 1
            if self._pending >= self.flush_every:
                self._file.flush()
                self._pending = 0

    def close(self) -> None:
        """Flush, fsync, rename the temp file over ``path``, fsync the folder; safe to call twice.

        If this fails, ``path`` is left as it was and the temp file keeps this run's lines."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        publish(self.temp_path, self.path)

    def abort(self) -> None:
        """End a failed run: ``path`` is left as it was; this run's lines stay in the temp file (logged)."""
        if self._file.closed:
            return
        self._file.close()
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
