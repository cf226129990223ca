"""Rules turn tracked detections over time into ``Event``s: ``PolygonZoneRule`` (zone_enter / zone_exit)
and ``LineCrossingRule`` (line_cross in / out).

``TrackRule`` holds what every per-track rule shares: parameter checks, the class filter, the anchor point,
event construction and forgetting tracks that vanished. The rule classes are imported lazily so that
``zone`` and ``line`` can import ``TrackRule`` from here without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame
from edge_vision.core.rules.geometry import ANCHORS, Points, anchor_points

if TYPE_CHECKING:
    from edge_vision.core.rules.line import LineCrossingRule
    from edge_vision.core.rules.zone import PolygonZoneRule

__all__ = ["LineCrossingRule", "PolygonZoneRule", "TrackRule", "class_name"]


def class_name(labels: Sequence[str], class_id: int) -> str:
    """The label of ``class_id``, or its number when the labels do not cover it."""
    return labels[class_id] if 0 <= class_id < len(labels) else str(class_id)


def check_int(rule: str, key: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= minimum, else ConfigError naming ``rule.key``. Bools are rejected: YAML
    ``true`` for a frame count is a mistake, not 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"rule {rule!r}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(rule: str, key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"rule {rule!r}: {key} must be a number >= {minimum}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise ConfigError(f"rule {rule!r}: {key} must be a number >= {minimum}, got {value!r}")
    return number


def _class_ids(rule: str, labels: Sequence[str], classes: Sequence[str] | None) -> NDArray[np.int32] | None:
    """Class names -> ids; None = every class. Empty names are dropped, since ROS parameter files cannot
    hold an empty list and write ``[""]`` for "all". A bare number selects that id (models without labels)."""
    if isinstance(classes, str):
        raise ConfigError(f"rule {rule!r}: classes must be a list of class names, got the string {classes!r}")
    if classes is None:
        return None
    wanted = [str(c) for c in classes if str(c)]
    if not wanted:
        return None
    ids: list[int] = []
    for cls in wanted:
        if cls in labels:
            ids.extend(i for i, label in enumerate(labels) if label == cls)
        elif cls.isdigit():
            ids.append(int(cls))
        else:
            known = f"{len(labels)} labels: {list(labels)[:10]}{'...' if len(labels) > 10 else ''}"
            raise ConfigError(f"rule {rule!r}: class {cls!r} in classes is not a model label ({known})")
    return np.array(sorted(set(ids)), dtype=np.int32)


class TrackRule:
    """Base of rules that follow each track id: subclasses keep per-track state keyed by track id and call
    ``_forget`` once per update to drop the state of tracks not seen for ``forget_after_frames``.

    labels: class names, index = class id (for event ``class_name`` and the ``classes`` filter).
    classes: only these class names (None or empty = all).
    anchor: the box point tested: ``bottom_center`` (where the object stands) or ``center``.
    forget_after_frames: a track unseen for more than this many source frames (``Frame.sequence`` units) is
        forgotten; if its id comes back it starts afresh.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        forget_after_frames: int = 300,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"rule name must be a non-empty string, got {name!r}")
        if anchor not in ANCHORS:
            raise ConfigError(f"rule {name!r}: anchor must be one of {list(ANCHORS)}, got {anchor!r}")
        self.name = name
        self.labels = [str(label) for label in labels]
        self.classes = classes
        self.anchor = anchor
        self.forget_after_frames = check_int(name, "forget_after_frames", forget_after_frames, 1)
        self._class_ids = _class_ids(name, self.labels, classes)
        self._last_seen: dict[int, int] = {}
        self._sequence: int | None = None

    def _select(self, tracks: Detections, frame: Frame) -> tuple[Detections, Points]:
        """The tracked detections this rule looks at and their anchor points; marks them seen."""
        keep = tracks.is_tracked
        if self._class_ids is not None:
            keep &= np.isin(tracks.class_ids, self._class_ids)
        selected = tracks[keep]
        self._sequence = frame.sequence
        for track_id in selected.track_ids.tolist():
            self._last_seen[track_id] = frame.sequence
        return selected, anchor_points(selected, self.anchor)

    def _forget(self, sequence: int) -> list[int]:
        """Drop and return the ids unseen for too long. A sequence that went backwards (a restarted
        source) makes every age negative: those tracks are forgotten too rather than kept forever."""
        stale = [tid for tid, seen in self._last_seen.items() if not 0 <= sequence - seen <= self.forget_after_frames]
        for track_id in stale:
            del self._last_seen[track_id]
        return stale

    def _seen_now(self, track_id: int) -> bool:
        return self._sequence is not None and self._last_seen.get(track_id) == self._sequence

    def _event(
        self,
        kind: str,
        frame: Frame,
        track_id: int,
        class_id: int,
        score: float,
        xyxy: Sequence[float],
        direction: str = "",
    ) -> Event:
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        return Event(
            kind=kind,
            rule=self.name,
            camera_id=frame.camera_id,
            stamp_ns=int(frame.stamp_ns),
            sequence=int(frame.sequence),
            track_id=int(track_id),
            class_id=int(class_id),
            class_name=class_name(self.labels, int(class_id)),
            score=float(score),
            xyxy=(x1, y1, x2, y2),
            direction=direction,
        )


def __getattr__(name: str) -> Any:
    if name == "PolygonZoneRule":
        from edge_vision.core.rules.zone import PolygonZoneRule

        return PolygonZoneRule
    if name == "LineCrossingRule":
        from edge_vision.core.rules.line import LineCrossingRule

        return LineCrossingRule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
