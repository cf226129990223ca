"""``PolygonZoneRule``: ``zone_enter`` / ``zone_exit`` events as tracks move in and out of a polygon."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.annotate import check_image, draw_polygon
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
    as_polygon,
    check_in_frame,
    check_int,
)
from edge_vision.core.rules.geometry import points_in_polygon

__all__ = ["ZONE_ENTER", "ZONE_EXIT", "PolygonZoneRule"]

ZONE_ENTER = "zone_enter"
ZONE_EXIT = "zone_exit"


@dataclass(slots=True)
class _ZoneTrack:
    inside: bool = False  # the debounced state events are emitted from
    streak: int = 0  # consecutive observations that disagree with ``inside``
    class_id: int = 0
    score: float = 0.0
    xyxy: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class PolygonZoneRule(TrackRule):
    """Emits ``zone_enter`` when a track's anchor has been inside ``polygon`` for ``min_frames`` consecutive
    observations, and ``zone_exit`` when it has been outside as long.

    A new track starts *outside*, so one that first appears inside the zone enters it (after ``min_frames``).
    A track that vanishes is forgotten after ``forget_after_s`` without an exit event, unless ``exit_on_lost``
    is set: then a track forgotten while inside emits ``zone_exit`` with its last box.

    polygon: >= 3 vertices in source pixels, flat ``[x1, y1, x2, y2, ...]`` (or ``[[x, y], ...]`` pairs); any
        winding; self-intersecting uses the even-odd rule.
    min_frames: debounce; 1 flips on the first observation, larger values ignore boxes flickering on the edge.
    See ``TrackRule`` for labels, classes, anchor and forget_after_s.

    ``occupancy`` is the number of tracks inside the zone that were seen in the latest update;
    ``enter_count`` / ``exit_count`` count the events emitted so far.
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("polygon", [0.0], "zone vertices in source pixels, flat [x1, y1, x2, y2, ...] (>= 3 points)"),
        CLASSES_PARAM,
        ANCHOR_PARAM,
        Param("min_frames", 1, "consecutive observations inside/outside before it counts", min=1),
        FORGET_PARAM,
        Param("exit_on_lost", False, "emit zone_exit when a track inside is forgotten"),
    )

    color: tuple[int, int, int] = (0, 200, 255)  # BGR
    thickness = 2
    opacity = 0.15  # fill; 0 draws the outline only

    def __init__(
        self,
        name: str,
        polygon: Sequence[float] | Sequence[Sequence[float]] | NDArray[Any],
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        min_frames: int = 1,
        forget_after_s: float = 10.0,
        exit_on_lost: bool = False,
    ) -> None:
        super().__init__(name, labels, classes, anchor, forget_after_s)
        self.polygon = as_polygon(name, "polygon", polygon)
        self.min_frames = check_int(name, "min_frames", min_frames, 1)
        if not isinstance(exit_on_lost, (bool, np.bool_)):
            raise ConfigError(f"rule {name!r}: exit_on_lost must be true or false, got {exit_on_lost!r}")
        self.exit_on_lost = bool(exit_on_lost)
        self.enter_count = 0
        self.exit_count = 0
        self._tracks: dict[int, _ZoneTrack] = {}

    @property
    def occupancy(self) -> int:
        return sum(1 for tid, state in self._tracks.items() if state.inside and self._seen_now(tid))

    def check_frame(self, width: int, height: int) -> None:
        check_in_frame(self.name, {"polygon": self.polygon}, width, height)

    def update(self, tracks: Detections, meta: Meta) -> list[Event]:
        events: list[Event] = []
        for track_id in self._forget(int(meta.stamp_ns)):
            state = self._tracks.pop(track_id)
            if self.exit_on_lost and state.inside:
                events.append(self._emit(ZONE_EXIT, meta, track_id, state))
        selected, points = self._select(tracks, meta)
        inside_now = points_in_polygon(points, self.polygon)
        for i, track_id in enumerate(selected.track_ids.tolist()):
            state = self._tracks.setdefault(track_id, _ZoneTrack())
            box = selected.xyxy[i].tolist()
            state.class_id = int(selected.class_ids[i])
            state.score = float(selected.scores[i])
            state.xyxy = (box[0], box[1], box[2], box[3])
            if bool(inside_now[i]) == state.inside:
                state.streak = 0
                continue
            state.streak += 1
            if state.streak >= self.min_frames:
                state.inside = not state.inside
                state.streak = 0
                events.append(self._emit(ZONE_ENTER if state.inside else ZONE_EXIT, meta, track_id, state))
        return events

    def _emit(self, kind: str, meta: Meta, track_id: int, state: _ZoneTrack) -> Event:
        if kind == ZONE_ENTER:
            self.enter_count += 1
        else:
            self.exit_count += 1
        return self._event(kind, meta, track_id, state.class_id, state.score, state.xyxy)

    def draw(self, image: NDArray[np.uint8]) -> None:
        """The outline, a light fill, and ``name: N inside (in X / out Y)``."""
        check_image(image)
        label = f"{self.name}: {self.occupancy} inside (in {self.enter_count} / out {self.exit_count})"
        draw_polygon(image, self.polygon, self.color, thickness=self.thickness, opacity=self.opacity, label=label)

    def reset(self) -> None:
        """Forget every track and zero the counters (e.g. when the source restarts)."""
        super().reset()
        self._tracks.clear()
        self.enter_count = self.exit_count = 0
