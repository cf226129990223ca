"""``CountAction``: counts frames, tracked boxes and events, and writes the counts as JSON on ``close``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.frame import FrameMeta


class CountAction:
    """path: the JSON file written at ``close`` (relative to the context ``output_dir``).
    kinds: count only events of these kinds (empty = every kind).
    fail_after: raise on every frame after this many (0 = never): what a broken action looks like to the
        runtime (its errors are counted; ``pipeline.error_budget`` of them in a row fail the run)."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("path", "counts.json", "JSON file written at close (relative to the output folder)"),
        Param("kinds", [""], "event kinds to count (empty = all)"),
        Param("fail_after", 0, "raise on every frame after this many (0 = never)", min=0),
    )

    def __init__(
        self, path: str = "counts.json", kinds: Sequence[str] = (), fail_after: int = 0, output_dir: str = "."
    ) -> None:
        self.path = Path(output_dir) / path
        self.kinds = {k for k in kinds if k}
        self.fail_after = fail_after
        self.frames = 0
        self.events = 0
        self.track_ids: set[int] = set()
        self.last_stamp_ns = 0
        self._closed = False

    def handle(self, events: Sequence[Event], meta: FrameMeta, tracks: Detections) -> None:
        if self.fail_after and self.frames >= self.fail_after:
            raise RuntimeError(f"counter gave up after {self.fail_after} frames")
        self.frames += 1
        self.last_stamp_ns = meta.stamp_ns
        self.track_ids.update(int(t) for t in tracks.track_ids.tolist() if t >= 0)
        self.events += sum(1 for e in events if not self.kinds or e.kind in self.kinds)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        counts = {"frames": self.frames, "events": self.events, "track_ids": sorted(self.track_ids)}
        temporary.write_text(json.dumps(counts) + "\n", encoding="utf-8")
        temporary.replace(self.path)
