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

    Bounded memory for months-long runs: a track not seen in its camera's last ``retire_after_frames`` frames is
    folded into per-class counts and a histogram of lengths, and forgotten. Every id used to be kept for the whole
    run (~100 B each; a busy camera makes tens of thousands a day). No tracker keeps a lost track that long
    (ByteTrack: ``track_buffer`` 30 frames); an id that came back after its retirement would count twice.
    """

    def __init__(self, labels: Sequence[str], min_track_frames: int = 10, retire_after_frames: int = 1000) -> None:
        if isinstance(min_track_frames, bool) or not isinstance(min_track_frames, int) or min_track_frames < 1:
            raise ConfigError(f"run summary: min_track_frames must be an integer >= 1, got {min_track_frames!r}")
        if retire_after_frames < 1:
            raise ConfigError(f"run summary: retire_after_frames must be >= 1, got {retire_after_frames!r}")
        self.retire_after_frames = retire_after_frames
        self.labels = list(labels)
        self.min_track_frames = min_track_frames
        self.frames = 0
        self.detections_per_class: dict[str, int] = {}
        self.events: dict[str, int] = {}
        self.started = time.perf_counter()
        self.finished: float | None = None
        # Live tracks per camera (each camera's tracker numbers its tracks from 1): id -> [frames seen in, last
        # camera frame seen, class id -> frames].
        self._live: dict[str, dict[int, tuple[list[int], Counter[int]]]] = {}
        self._camera_frames: dict[str, int] = {}
        # Retired tracks, folded: long ones per class id and by length, and how many were short.
        self._retired_classes: Counter[int] = Counter()
        self._retired_lengths: Counter[int] = Counter()
        self._retired_short = 0
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
        seen: dict[int, int] = {}
        for track_id, class_id in zip(tracks.track_ids.tolist(), tracks.class_ids.tolist(), strict=True):
            if track_id >= 0:
                seen.setdefault(track_id, class_id)
        with self._lock:
            frame = self._camera_frames[camera] = self._camera_frames.get(camera, 0) + 1
            live = self._live.setdefault(camera, {})
            for track_id, class_id in seen.items():
                entry = live.get(track_id)
                if entry is None:
                    entry = live[track_id] = ([0, frame], Counter())
                entry[0][0] += 1
                entry[0][1] = frame
                entry[1][class_id] += 1
            if frame % max(1, self.retire_after_frames // 4) == 0:
                self._retire(live, frame)

    def _retire(self, live: dict[int, tuple[list[int], Counter[int]]], frame: int) -> None:
        """Fold the tracks of one camera not seen for ``retire_after_frames`` into the counts (lock held)."""
        gone = [tid for tid, (state, _c) in live.items() if frame - state[1] >= self.retire_after_frames]
        for track_id in gone:
            (frames, _last), classes = live.pop(track_id)
            if frames >= self.min_track_frames:
                # most_common breaks ties by first seen: the class a track started with.
                self._retired_classes[classes.most_common(1)[0][0]] += 1
                self._retired_lengths[frames] += 1
            else:
                self._retired_short += 1

    @property
    def tracks_held(self) -> int:
        """Tracks kept one by one now (live, or not yet retired); the rest are folded into counts."""
        with self._lock:
            return sum(len(live) for live in self._live.values())

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
            per_class_id = Counter(self._retired_classes)
            lengths = Counter(self._retired_lengths)
            short = self._retired_short
            for live in self._live.values():
                for (seen_in, _last), classes in live.values():
                    if seen_in >= self.min_track_frames:
                        per_class_id[classes.most_common(1)[0][0]] += 1
                        lengths[seen_in] += 1
                    else:
                        short += 1
        per_class: dict[str, int] = {}
        for class_id, count in per_class_id.items():
            name = self._name(class_id)
            per_class[name] = per_class.get(name, 0) + count
        counted = sum(lengths.values())
        seconds = self.seconds
        return {
            "frames": frames,
            "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "detections_per_class": dict(sorted(detections.items(), key=lambda kv: -kv[1])),
            "tracks_per_class": dict(sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))),
            "tracks": counted,
            "short_tracks": short,
            "min_track_frames": self.min_track_frames,
            "median_track_length": _upper_median(lengths),
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


def _upper_median(counts: Counter[int]) -> int:
    """The upper middle value of a multiset given as value -> count (0 when empty)."""
    middle = sum(counts.values()) // 2
    for value in sorted(counts):
        middle -= counts[value]
        if middle < 0:
            return value
    return 0
