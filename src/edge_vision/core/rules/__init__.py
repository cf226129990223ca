"""Rules turn tracked detections over time into ``Event``s: ``PolygonZoneRule`` (zone_enter / zone_exit)
and ``LineCrossingRule`` (line_cross in / out). More come as plugins (entry-point group ``edge_vision.rules``).

``TrackRule`` holds what every per-track rule shares: parameter checks, the class filter, the anchor point,
event construction and forgetting tracks that vanished (by stamp). The helpers here (``PARAMS`` pieces,
``as_vertices``, ``check_in_frame``...) are for plugin rules as much as for the built-in ones. The rule classes
are imported lazily so that ``zone`` and ``line`` can import ``TrackRule`` from here without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.rules.geometry import ANCHORS, Points, anchor_points, polygon_area

if TYPE_CHECKING:
    from edge_vision.core.rules.line import LineCrossingRule
    from edge_vision.core.rules.zone import PolygonZoneRule

__all__ = [
    "ANCHOR_PARAM",
    "CLASSES_PARAM",
    "FORGET_PARAM",
    "LineCrossingRule",
    "Meta",
    "PolygonZoneRule",
    "TrackRule",
    "as_polygon",
    "as_vertices",
    "check_in_frame",
    "class_name",
]

# What rules read time and identity from: a FrameMeta, or a Frame (which carries the same fields).
Meta: TypeAlias = FrameMeta | Frame

# Parameters every per-track rule declares (ROS parameters cannot be empty lists: [""] means "all classes").
CLASSES_PARAM = Param("classes", [""], "class names the rule applies to (empty = all)")
ANCHOR_PARAM = Param("anchor", "bottom_center", "box point tested", choices=ANCHORS)
FORGET_PARAM = Param("forget_after_s", 10.0, "seconds after which an unseen track is forgotten (> 0)", min=0.0)


def class_name(labels: Sequence[str], class_id: int) -> str:
    """The label of ``class_id``, or its number when the labels do not cover it."""
    return labels[class_id] if 0 <= class_id < len(labels) else str(class_id)


def check_int(rule: str, key: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= minimum, else ConfigError naming ``rule.key``. Bools are rejected: YAML
    ``true`` for a frame count is a mistake, not 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"rule {rule!r}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(rule: str, key: str, value: Any, minimum: float, *, strict: bool = False) -> float:
    """``value`` as a finite float >= minimum (> minimum when ``strict``), else ConfigError naming it."""
    relation = ">" if strict else ">="
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"rule {rule!r}: {key} must be a number {relation} {minimum}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        raise ConfigError(f"rule {rule!r}: {key} must be a number {relation} {minimum}, got {value!r}")
    return number


def _is_pair(value: Any) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)


def as_vertices(rule: str, key: str, value: Any, minimum: int) -> Points:
    """Points from a flat ``[x1, y1, x2, y2, ...]`` list (what ROS parameters can hold) or, for library
    users, ``[[x, y], ...]`` pairs or an (N, 2) array; a one-line ConfigError naming ``rule`` and ``key``
    otherwise."""
    what = f"rule {rule!r}: {key}"
    if not _is_pair(value):
        raise ConfigError(f"{what} must be a flat [x1, y1, x2, y2, ...] list, got {value!r}")
    items = list(value)
    if not items:
        raise ConfigError(f"{what} is empty: give >= {minimum} [x, y] point(s) as a flat [x1, y1, ...] list")
    if all(_is_pair(item) for item in items):
        pairs: list[Any] = items
        if any(len(item) != 2 for item in items):
            raise ConfigError(f"{what} must be [x, y] pairs, got {value!r}")
    elif any(_is_pair(item) for item in items):
        raise ConfigError(f"{what} mixes numbers and [x, y] pairs: {value!r}")
    elif len(items) % 2:
        raise ConfigError(f"{what} has an odd number of coordinates ({len(items)}): {value!r}")
    else:
        pairs = [items[i : i + 2] for i in range(0, len(items), 2)]
    try:
        points = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers, got {value!r}") from None
    if not np.isfinite(points).all():
        raise ConfigError(f"{what} must be finite, got {value!r}")
    if len(points) < minimum:
        raise ConfigError(f"{what} needs >= {minimum} [x, y] points, got {len(points)}: {value!r}")
    return points


def as_polygon(rule: str, key: str, value: Any) -> Points:
    """``as_vertices`` for an area: >= 3 points enclosing a non-zero area (ConfigError naming ``rule``)."""
    polygon = as_vertices(rule, key, value, 3)
    if polygon_area(polygon) <= 0.0:
        raise ConfigError(f"rule {rule!r}: {key} has zero area (collinear points?): {polygon.tolist()}")
    return polygon


def check_in_frame(rule: str, geometry: Mapping[str, Points], width: int, height: int) -> None:
    """ConfigError naming ``rule`` and the parameter when a point lies outside the ``width`` x ``height``
    source frame, or when every coordinate lies within 0..1 (normalised coordinates, a sub-pixel shape). A
    size of 0 means unknown: nothing is checked."""
    if width <= 0 or height <= 0:
        return
    for key, points in geometry.items():
        outside = (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
        if outside.any():
            x, y = points[int(np.argmax(outside))].tolist()
            raise ConfigError(
                f"rule {rule!r}: {key} point ({x:g}, {y:g}) is outside the {width}x{height} source frame "
                f"(x in 0..{width}, y in 0..{height})"
            )
    every = np.concatenate([points.ravel() for points in geometry.values()])
    if len(every) and width > 1 and height > 1 and ((every >= 0) & (every <= 1)).all():
        keys = " and ".join(geometry)
        raise ConfigError(
            f"rule {rule!r}: {keys} lie within 0..1 of a {width}x{height} frame: "
            "coordinates are source pixels, not normalised"
        )


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
    """Base of rules that follow each track id: subclasses keep per-track state keyed by track id and, at the
    start of each update (before ``_select``), call ``_forget`` to drop the state of tracks not seen for
    ``forget_after_s``: a track back after a longer gap with no update in between starts afresh too.

    labels: class names, index = class id (for event ``class_name`` and the ``classes`` filter).
    classes: only these class names (None or empty = all).
    anchor: the box point tested: ``bottom_center`` (where the object stands) or ``center``.
    forget_after_s: a track unseen for longer than this (seconds between stamps) is forgotten; if its id
        comes back it starts afresh. Stamps, not frame counts, so ``every_nth`` and lost messages do not
        change it.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        anchor: str = "bottom_center",
        forget_after_s: float = 10.0,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"rule name must be a non-empty string, got {name!r}")
        if anchor not in ANCHORS:
            raise ConfigError(f"rule {name!r}: anchor must be one of {list(ANCHORS)}, got {anchor!r}")
        self.name = name
        self.labels = [str(label) for label in labels]
        self.classes = classes
        self.anchor = anchor
        self.forget_after_s = check_float(name, "forget_after_s", forget_after_s, 0.0, strict=True)
        self._forget_ns = round(self.forget_after_s * 1e9)
        self._class_ids = _class_ids(name, self.labels, classes)
        self._last_seen: dict[int, int] = {}  # track id -> stamp_ns of its latest observation
        self._stamp: int | None = None  # of the latest update

    def _select(self, tracks: Detections, meta: Meta) -> tuple[Detections, Points]:
        """The tracked detections this rule looks at and their anchor points; marks them seen."""
        keep = tracks.is_tracked
        if self._class_ids is not None:
            keep &= np.isin(tracks.class_ids, self._class_ids)
        selected = tracks[keep]
        stamp = int(meta.stamp_ns)
        self._stamp = stamp
        for track_id in selected.track_ids.tolist():
            self._last_seen[track_id] = stamp
        return selected, anchor_points(selected, self.anchor)

    def _forget(self, stamp_ns: int) -> list[int]:
        """Drop and return the ids unseen for too long. A stamp that went backwards (a restarted source)
        makes every age negative: those tracks are forgotten too rather than kept forever."""
        stale = [tid for tid, seen in self._last_seen.items() if not 0 <= stamp_ns - seen <= self._forget_ns]
        for track_id in stale:
            del self._last_seen[track_id]
        return stale

    def _seen_now(self, track_id: int) -> bool:
        return self._stamp is not None and self._last_seen.get(track_id) == self._stamp

    def _event(
        self,
        kind: str,
        meta: Meta,
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
            camera_id=meta.camera_id,
            stamp_ns=int(meta.stamp_ns),
            sequence=int(meta.sequence),
            track_id=int(track_id),
            class_id=int(class_id),
            class_name=class_name(self.labels, int(class_id)),
            score=float(score),
            xyxy=(x1, y1, x2, y2),
            direction=direction,
        )

    def reset(self) -> None:
        """Forget every track (subclasses also zero their counters), e.g. when the source restarts."""
        self._last_seen.clear()
        self._stamp = None


def __getattr__(name: str) -> Any:
    if name == "PolygonZoneRule":
        from edge_vision.core.rules.zone import PolygonZoneRule

        return PolygonZoneRule
    if name == "LineCrossingRule":
        from edge_vision.core.rules.line import LineCrossingRule

        return LineCrossingRule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
