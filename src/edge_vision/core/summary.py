"""What a run found: frames, throughput, detections per class, tracks, events. Fed by stage taps."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_vision.core.packet import FramePacket


@dataclass
class RunSummary:
    labels: Sequence[str]
    frames: int = 0
    detections_per_class: dict[str, int] = field(default_factory=dict)
    track_ids: set[int] = field(default_factory=set)
    track_lengths: dict[int, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    def on_detections(self, packet: FramePacket) -> None:
        if packet.detections is None:
            return
        with self._lock:
            self.frames += 1
            for class_id in packet.detections.class_ids.tolist():
                name = self._name(class_id)
                self.detections_per_class[name] = self.detections_per_class.get(name, 0) + 1

    def on_tracks(self, packet: FramePacket) -> None:
        if packet.tracks is None:
            return
        with self._lock:
            for track_id in packet.tracks.track_ids.tolist():
                if track_id >= 0:
                    self.track_ids.add(track_id)
                    self.track_lengths[track_id] = self.track_lengths.get(track_id, 0) + 1

    def on_events(self, packet: FramePacket) -> None:
        with self._lock:
            for event in packet.events:
                key = f"{event.rule}/{event.kind}" + (f"/{event.direction}" if event.direction else "")
                self.events[key] = self.events.get(key, 0) + 1

    def finish(self) -> None:
        self.finished = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def to_dict(self) -> dict[str, Any]:
        lengths = sorted(self.track_lengths.values())
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else 0.0,
            "detections_per_class": dict(sorted(self.detections_per_class.items(), key=lambda kv: -kv[1])),
            "tracks": len(self.track_ids),
            "median_track_length": lengths[len(lengths) // 2] if lengths else 0,
            "events": dict(sorted(self.events.items())),
        }

    def format(self) -> str:
        d = self.to_dict()
        classes = ", ".join(f"{k} {v}" for k, v in d["detections_per_class"].items()) or "none"
        events = ", ".join(f"{k} {v}" for k, v in d["events"].items()) or "none"
        return (
            f"frames: {d['frames']} in {d['seconds']:.1f} s ({d['fps']:.1f} fps)\n"
            f"detections: {classes}\n"
            f"tracks: {d['tracks']} (median length {d['median_track_length']} frames)\n"
            f"events: {events}"
        )
