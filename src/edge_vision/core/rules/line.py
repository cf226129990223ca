"""``LineCrossingRule``: directional ``line_cross`` events when tracks cross a line segment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.annotate import check_image, draw_text
from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.rules import (
    ANCHOR_PARAM,
    CLASSES_PARAM,
    FORGET_PARAM,
    Meta,
    TrackRule,
    as_vertices,
    check_float,
    check_in_frame,
    check_int,
)
from edge_vision.core.rules.geometry import crosses_segment, signed_distance

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
    start, end: the segment's ends in source pixels, each a flat ``[x, y]``.
    See ``TrackRule`` for labels, classes, anchor and forget_after_s.

    ``in_count`` / ``out_count`` count the events emitted so far.
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("start", [0.0], "line start [x, y] in source pixels"),
        Param("end", [0.0], "line end [x, y] in source pixels"),
        CLASSES_PARAM,
        ANCHOR_PARAM,
        Param("min_distance", 2.0, "hysteresis: pixels past the line before a side counts", min=0.0),
        Param("min_frames", 1, "consecutive observations on the new side before a crossing counts", min=1),
        FORGET_PARAM,
    )

    color: tuple[int, int, int] = (255, 255, 255)  # BGR
    thickness = 2
    arrow = 24  # length in pixels of the ``in`` arrow drawn from the line's midpoint; 0 = none

    def __init__(
        self,
        name: str,
        start: Sequence[float] | Sequence[Sequence[float]] | NDArray[Any],
        end: Sequence[float] | Sequence[Sequence[float]] | NDArray[Any],
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        min_distance: float = 2.0,
        min_frames: int = 1,
        forget_after_s: float = 10.0,
    ) -> None:
        super().__init__(name, labels, classes, anchor, forget_after_s)
        ends = []
        for key, value in (("start", start), ("end", end)):
            point = as_vertices(name, key, value, 1)
            if len(point) != 1:
                raise ConfigError(f"rule {name!r}: {key} must be one [x, y] point, got {value!r}")
            ends.append(point[0])
        if np.array_equal(ends[0], ends[1]):
            raise ConfigError(f"rule {name!r}: start and end are the same point {ends[0].tolist()}")
        self.start, self.end = ends[0], ends[1]
        self.min_distance = check_float(name, "min_distance", min_distance, 0.0)
        self.min_frames = check_int(name, "min_frames", min_frames, 1)
        self.in_count = 0
        self.out_count = 0
        self._tracks: dict[int, _LineTrack] = {}

    def check_frame(self, width: int, height: int) -> None:
        check_in_frame(self.name, {"start": self.start[None], "end": self.end[None]}, width, height)

    def update(self, tracks: Detections, meta: Meta) -> list[Event]:
        for track_id in self._forget(int(meta.stamp_ns)):
            del self._tracks[track_id]
        selected, points = self._select(tracks, meta)
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
                        meta,
                        track_id,
                        int(selected.class_ids[i]),
                        float(selected.scores[i]),
                        selected.xyxy[i].tolist(),
                        direction,
                    )
                )
            state.side, state.point, state.pending = side, point, 0
        return events

    def draw(self, image: NDArray[np.uint8]) -> None:
        """The line, an arrow showing the ``in`` direction, and ``name: in X / out Y``."""
        check_image(image)
        start, end = self.start, self.end
        cv2.line(image, _pt(start), _pt(end), self.color, self.thickness, cv2.LINE_AA)
        for point in (start, end):
            cv2.circle(image, _pt(point), self.thickness + 2, self.color, cv2.FILLED, cv2.LINE_AA)
        direction = end - start
        # ``in`` is towards the right of start -> end on screen (y down): the normal (-dy, dx).
        normal = np.array([-direction[1], direction[0]]) / float(np.hypot(*direction))
        middle = (start + end) / 2
        if self.arrow > 0:
            cv2.arrowedLine(image, _pt(middle), _pt(middle + normal * self.arrow), self.color, 1, cv2.LINE_AA)
        draw_text(image, f"{self.name}: in {self.in_count} / out {self.out_count}", *_pt(start), self.color)

    def reset(self) -> None:
        """Forget every track and zero the counters (e.g. when the source restarts)."""
        super().reset()
        self._tracks.clear()
        self.in_count = self.out_count = 0


def _pt(point: NDArray[np.float64]) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))
