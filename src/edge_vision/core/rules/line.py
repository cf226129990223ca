"""``LineCrossingRule``: directional ``line_cross`` events when tracks cross a line segment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame
from edge_vision.core.rules import TrackRule, check_float, check_int
from edge_vision.core.rules.geometry import as_points, crosses_segment, signed_distance

__all__ = ["DIRECTION_IN", "DIRECTION_OUT", "LINE_CROSS", "LineCrossingRule"]

LINE_CROSS = "line_cross"
DIRECTION_IN = "in"
DIRECTION_OUT = "out"


@dataclass(slots=True)
class _LineTrack:
    side: int  # +1 right, -1 left, 0 not yet clear of the hysteresis band
    point: tuple[float, float]  # the last anchor that was clearly on ``side``
    pending: int = 0  # consecutive clear observations on the other side, not yet ``min_frames``


class LineCrossingRule(TrackRule):
    """Emits ``line_cross`` when a track's anchor goes from one side of the segment ``start`` -> ``end`` to the
    other, through the segment (going round one of its ends is not a crossing).

    Direction, as seen on screen (image y axis points down): ``in`` = from the *left* of the directed line
    start -> end to its *right*; ``out`` = right to left. For start (0, 0) -> end (100, 0), pointing right,
    moving down the image is ``in``; for a vertical line drawn top -> bottom, moving right-to-left is ``in``.
    Swap start and end to swap the directions.

    min_distance: hysteresis in pixels. A side counts only once the anchor is more than this far from the
    line, so a box jittering on the line never fires; it then takes one clear move to the other side (one
    event) and one clear move back (one more). Set it above the tracker's box jitter.
    min_frames: debounce; the anchor must be clearly on the new side in this many consecutive observations
    (frames in the band neither count nor reset) before the crossing counts. 2 ignores one-frame box glitches.
    See ``TrackRule`` for labels, classes, anchor and forget_after_frames.

    ``in_count`` / ``out_count`` count the events emitted so far.
    """

    def __init__(
        self,
        name: str,
        start: Sequence[float],
        end: Sequence[float],
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        min_distance: float = 2.0,
        min_frames: int = 1,
        forget_after_frames: int = 300,
    ) -> None:
        super().__init__(name, labels, classes, anchor, forget_after_frames)
        try:
            ends = as_points([start, end], minimum=2, what="start/end")
        except ValueError as exc:
            raise ConfigError(f"line rule {name!r}: start and end must be [x, y] points: {exc}") from exc
        if np.array_equal(ends[0], ends[1]):
            raise ConfigError(f"line rule {name!r}: start and end are the same point {ends[0].tolist()}")
        self.start, self.end = ends[0], ends[1]
        self.min_distance = check_float(name, "min_distance", min_distance, 0.0)
        self.min_frames = check_int(name, "min_frames", min_frames, 1)
        self.in_count = 0
        self.out_count = 0
        self._tracks: dict[int, _LineTrack] = {}

    def update(self, tracks: Detections, frame: Frame) -> list[Event]:
        selected, points = self._select(tracks, frame)
        distance = signed_distance(points, self.start, self.end)
        sides = np.where(distance > self.min_distance, 1, np.where(distance < -self.min_distance, -1, 0))
        track_ids = selected.track_ids.tolist()

        # Tracks whose move to the other side is confirmed this frame: test all their moves at once.
        flipped = [
            i
            for i, tid in enumerate(track_ids)
            if sides[i] != 0
            and tid in self._tracks
            and self._tracks[tid].side == -sides[i]
            and self._tracks[tid].pending + 1 >= self.min_frames
        ]
        previous = np.array([self._tracks[track_ids[i]].point for i in flipped], dtype=np.float64).reshape(-1, 2)
        through = dict(zip(flipped, crosses_segment(previous, points[flipped], self.start, self.end), strict=True))

        events: list[Event] = []
        for i, track_id in enumerate(track_ids):
            side = int(sides[i])
            point = (float(points[i, 0]), float(points[i, 1]))
            state = self._tracks.get(track_id)
            if state is None:
                self._tracks[track_id] = _LineTrack(side, point)
                continue
            if side == 0:
                continue  # inside the hysteresis band: keep the last clear side and point
            if side == state.side or state.side == 0:
                state.side, state.point, state.pending = side, point, 0
                continue
            state.pending += 1
            if state.pending < self.min_frames:
                continue
            # .get: a tracker that repeats an id within one frame must not crash the rule.
            if through.get(i, False):
                direction = DIRECTION_IN if side > 0 else DIRECTION_OUT
                self.in_count += side > 0
                self.out_count += side < 0
                events.append(
                    self._event(
                        LINE_CROSS,
                        frame,
                        track_id,
                        int(selected.class_ids[i]),
                        float(selected.scores[i]),
                        selected.xyxy[i].tolist(),
                        direction,
                    )
                )
            state.side, state.point, state.pending = side, point, 0
        for track_id in self._forget(frame.sequence):
            del self._tracks[track_id]
        return events

    def reset(self) -> None:
        """Forget every track and zero the counters (e.g. when the source restarts)."""
        self._tracks.clear()
        self._last_seen.clear()
        self.in_count = self.out_count = 0
