"""``DwellRule`` (plugin ``dwell``): ``dwell`` events when a track stays inside a polygon for long enough.

A plugin like any third-party rule: this module, its entry point under ``edge_vision.rules`` in setup.py and
its test; nothing else in the package knows about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.annotate import check_image, draw_polygon
from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.rules import (
    ANCHOR_PARAM,
    CLASSES_PARAM,
    FORGET_PARAM,
    Meta,
    TrackRule,
    as_polygon,
    check_float,
    check_in_frame,
)
from edge_vision.core.rules.geometry import points_in_polygon

__all__ = ["DWELL", "DwellRule"]

DWELL = "dwell"


@dataclass(slots=True)
class _DwellTrack:
    entered_ns: int | None = None  # stamp of the first observation inside in this visit; None = outside
    emitted: int = 0  # dwell events emitted in this visit
    inside: bool = False  # at its latest observation


class DwellRule(TrackRule):
    """Emits ``dwell`` when a track's anchor has been inside ``polygon`` for ``min_seconds`` (loitering).

    Time is the difference of stamps between the track's first observation inside and the current one, so
    ``every_nth`` and lost messages only delay an event to the next observation, never change its count. An
    observation outside ends the visit: the timer restarts at the next one inside. A track unseen for a while
    keeps its visit (an occlusion is not a departure) until it is forgotten after ``forget_after_s``.

    polygon: >= 3 vertices in source pixels, flat ``[x1, y1, x2, y2, ...]`` (or ``[[x, y], ...]`` pairs).
    min_seconds: how long inside before the first event (> 0).
    repeat_s: 0 = one event per visit; > 0 = another each ``repeat_s`` while still inside, due at
        ``min_seconds + k * repeat_s`` after entering (an update that skips past several due times emits one).
    See ``TrackRule`` for labels, classes, anchor and forget_after_s.

    ``dwelling`` is the number of tracks seen in the latest update that have been inside for ``min_seconds``;
    ``event_count`` counts the events emitted so far.
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("polygon", [0.0], "zone vertices in source pixels, flat [x1, y1, x2, y2, ...] (>= 3 points)"),
        CLASSES_PARAM,
        ANCHOR_PARAM,
        Param("min_seconds", 10.0, "seconds inside before a dwell event (> 0)", min=0.0),
        FORGET_PARAM,
        Param("repeat_s", 0.0, "0 = one event per visit; > 0 = again every repeat_s seconds while inside", min=0.0),
    )

    color: tuple[int, int, int] = (255, 80, 200)  # BGR, while nobody dwells
    alert_color: tuple[int, int, int] = (40, 40, 255)  # while someone does
    thickness = 2
    opacity = 0.15

    def __init__(
        self,
        name: str,
        polygon: Sequence[float] | Sequence[Sequence[float]] | NDArray[Any],
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        min_seconds: float = 10.0,
        forget_after_s: float = 10.0,
        repeat_s: float = 0.0,
    ) -> None:
        super().__init__(name, labels, classes, anchor, forget_after_s)
        self.polygon = as_polygon(name, "polygon", polygon)
        self.min_seconds = check_float(name, "min_seconds", min_seconds, 0.0, strict=True)
        self.repeat_s = check_float(name, "repeat_s", repeat_s, 0.0)
        # Whole ns: comparisons of stamp differences are exact.
        self._min_ns = round(self.min_seconds * 1e9)
        self._repeat_ns = round(self.repeat_s * 1e9)
        self.event_count = 0
        self._tracks: dict[int, _DwellTrack] = {}

    @property
    def dwelling(self) -> int:
        if self._stamp is None:
            return 0
        return sum(
            1
            for tid, state in self._tracks.items()
            if state.inside
            and state.entered_ns is not None
            and self._stamp - state.entered_ns >= self._min_ns
            and self._seen_now(tid)
        )

    def check_frame(self, width: int, height: int) -> None:
        check_in_frame(self.name, {"polygon": self.polygon}, width, height)

    def update(self, tracks: Detections, meta: Meta) -> list[Event]:
        stamp = int(meta.stamp_ns)
        for track_id in self._forget(stamp):
            del self._tracks[track_id]
        selected, points = self._select(tracks, meta)
        inside_now = points_in_polygon(points, self.polygon)
        events: list[Event] = []
        for i, track_id in enumerate(selected.track_ids.tolist()):
            state = self._tracks.setdefault(track_id, _DwellTrack())
            state.inside = bool(inside_now[i])
            if not state.inside:
                state.entered_ns, state.emitted = None, 0
                continue
            if state.entered_ns is None:
                state.entered_ns = stamp
            due = self._due(state.emitted)
            if due is None or stamp - state.entered_ns < due:
                continue
            state.emitted = self._emitted_by(stamp - state.entered_ns)
            self.event_count += 1
            events.append(
                self._event(
                    DWELL,
                    meta,
                    track_id,
                    int(selected.class_ids[i]),
                    float(selected.scores[i]),
                    selected.xyxy[i].tolist(),
                )
            )
        return events

    def _due(self, emitted: int) -> int | None:
        """ns inside at which event number ``emitted + 1`` of a visit is due; None = no more this visit."""
        if emitted == 0:
            return self._min_ns
        if self._repeat_ns == 0:
            return None
        return self._min_ns + emitted * self._repeat_ns

    def _emitted_by(self, inside_ns: int) -> int:
        """Events due after ``inside_ns`` inside (>= 1): those skipped over by a gap count as emitted."""
        if self._repeat_ns == 0:
            return 1
        return 1 + (inside_ns - self._min_ns) // self._repeat_ns

    def draw(self, image: NDArray[np.uint8]) -> None:
        """The outline and light fill (red while someone dwells) and ``name: N dwelling >= Ts (E events)``."""
        check_image(image)
        dwelling = self.dwelling
        label = f"{self.name}: {dwelling} dwelling >= {self.min_seconds:g}s ({self.event_count} events)"
        color = self.alert_color if dwelling else self.color
        draw_polygon(image, self.polygon, color, thickness=self.thickness, opacity=self.opacity, label=label)

    def reset(self) -> None:
        """Forget every track and zero the counter (e.g. when the source restarts)."""
        super().reset()
        self._tracks.clear()
        self.event_count = 0
