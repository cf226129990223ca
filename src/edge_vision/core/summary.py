"""What a run found: frames, throughput, detections per class, tracks per class, events. Fed by the runtime."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event

__all__ = ["RunSummary"]


class RunSummary:
    """Counts what the runtime hands it; every ``on_*`` method may be called from any thread.

    Tracks: an id counts once, under the class it had in most of its frames (a class-agnostic tracker may
    relabel a box), and only if it was seen in at least ``min_track_frames`` processed frames (tracker output,
    so after ``every_nth``). Shorter ids are fragments (occlusions, brief false positives): counting them
    made ``tracks`` read 7-10 for 6 people. They are reported as ``short_tracks``, not dropped silently.
    ``median_track_length`` is over the counted tracks.
    """

    def __init__(self, labels: Sequence[str], min_track_frames: int = 10) -> None:
        if isinstance(min_track_frames, bool) or not isinstance(min_track_frames, int) or min_track_frames < 1:
            raise ConfigError(f"run summary: min_track_frames must be an integer >= 1, got {min_track_frames!r}")
        self.labels = list(labels)
        self.min_track_frames = min_track_frames
        self.frames = 0
        self.detections_per_class: dict[str, int] = {}
        self.events: dict[str, int] = {}
        self.started = time.perf_counter()
        self.finished: float | None = None
        # Keyed by (camera, track id): each camera's tracker numbers its tracks from 1.
        self._track_frames: dict[tuple[str, int], int] = {}  # track -> frames it was seen in
        self._track_classes: dict[tuple[str, int], Counter[int]] = {}  # track -> class id -> frames
        self._lock = threading.Lock()

    def _name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    def on_detections(self, detections: Detections | None) -> None:
        """One processed frame's detections (None: the frame was not run through the detector)."""
        if detections is None:
            return
        class_ids = detections.class_ids.tolist()
        with self._lock:
            self.frames += 1
            for class_id in class_ids:
                name = self._name(class_id)
                self.detections_per_class[name] = self.detections_per_class.get(name, 0) + 1

    def on_tracks(self, tracks: Detections | None, camera: str = "") -> None:
        """One processed frame's tracker output for ``camera``; untracked rows (id < 0) are ignored, an id
        counts once a frame."""
        if tracks is None:
            return
        seen: dict[tuple[str, int], int] = {}
        for track_id, class_id in zip(tracks.track_ids.tolist(), tracks.class_ids.tolist(), strict=True):
            if track_id >= 0:
                seen.setdefault((camera, track_id), class_id)
        with self._lock:
            for track_id, class_id in seen.items():
                self._track_frames[track_id] = self._track_frames.get(track_id, 0) + 1
                self._track_classes.setdefault(track_id, Counter())[class_id] += 1

    def on_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        keys = [f"{e.rule}/{e.kind}" + (f"/{e.direction}" if e.direction else "") for e in events]
        with self._lock:
            for key in keys:
                self.events[key] = self.events.get(key, 0) + 1

    def finish(self) -> None:
        self.finished = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            frames = self.frames
            detections = dict(self.detections_per_class)
            events = dict(self.events)
            lengths = dict(self._track_frames)
            # most_common breaks ties by first seen: the class a track started with.
            classes = {tid: counts.most_common(1)[0][0] for tid, counts in self._track_classes.items()}
        long_ids = [tid for tid, n in lengths.items() if n >= self.min_track_frames]
        per_class: dict[str, int] = {}
        for tid in long_ids:
            name = self._name(classes[tid])
            per_class[name] = per_class.get(name, 0) + 1
        long_lengths = sorted(lengths[tid] for tid in long_ids)
        seconds = self.seconds
        return {
            "frames": frames,
            "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "detections_per_class": dict(sorted(detections.items(), key=lambda kv: -kv[1])),
            "tracks_per_class": dict(sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))),
            "tracks": len(long_ids),
            "short_tracks": len(lengths) - len(long_ids),
            "min_track_frames": self.min_track_frames,
            "median_track_length": long_lengths[len(long_lengths) // 2] if long_lengths else 0,
            "events": dict(sorted(events.items())),
        }

    def format(self) -> str:
        d = self.to_dict()
        classes = ", ".join(f"{k} {v}" for k, v in d["detections_per_class"].items()) or "none"
        tracks = ", ".join(f"{k} {v}" for k, v in d["tracks_per_class"].items()) or "none"
        tracks += f" (>= {d['min_track_frames']} frames; {d['short_tracks']} shorter)"
        if d["tracks"]:
            tracks += f", median length {d['median_track_length']} frames"
        events = ", ".join(f"{k} {v}" for k, v in d["events"].items()) or "none"
        return (
            f"frames: {d['frames']} in {d['seconds']:.1f} s ({d['fps']:.1f} fps)\n"
            f"detections: {classes}\n"
            f"tracks: {tracks}\n"
            f"events: {events}"
        )
