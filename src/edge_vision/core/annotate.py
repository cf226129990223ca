"""Small composable annotators (boxes, labels, zones, lines) drawn with OpenCV.

Each ``*Annotator.annotate(image, ...)`` draws IN PLACE on ``image`` (a bgr8 array the caller owns) and
returns it, so they chain. ``Annotator.annotate(frame, ...)`` composes them on a fresh copy: a ``Frame``'s
image is shared zero-copy by every stage and must never be written to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detections import Detections
from edge_vision.core.frame import Frame
from edge_vision.core.interfaces import Rule
from edge_vision.core.rules import class_name
from edge_vision.core.rules.line import LineCrossingRule
from edge_vision.core.rules.zone import PolygonZoneRule

__all__ = [
    "PALETTE",
    "Annotator",
    "BoxAnnotator",
    "LabelAnnotator",
    "LineAnnotator",
    "ZoneAnnotator",
    "color_for",
    "detection_colors",
]

Color = tuple[int, int, int]
Image = NDArray[np.uint8]

# BGR, chosen to stay distinguishable from each other and readable on video.
PALETTE: tuple[Color, ...] = (
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (211, 188, 0),
    (209, 99, 0),
    (255, 115, 100),
    (236, 24, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 56, 203),
    (200, 149, 255),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_for(key: int) -> Color:
    """A fixed colour per integer key (track id or class id): the same object keeps its colour."""
    return PALETTE[int(key) % len(PALETTE)]


def detection_colors(detections: Detections) -> list[Color]:
    """Colour by track id where tracked, else by class id."""
    keys = np.where(detections.is_tracked, detections.track_ids, detections.class_ids.astype(np.int64))
    return [color_for(k) for k in keys.tolist()]


def _text_color(background: Color) -> Color:
    b, g, r = background
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def _check_image(image: NDArray[np.uint8]) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"annotators draw on HxWx3 uint8 images, got shape {image.shape} dtype {image.dtype}")


def draw_text(image: Image, text: str, x: int, y: int, color: Color, scale: float = 0.5, thickness: int = 1) -> None:
    """``text`` on a filled ``color`` box whose bottom-left is (x, y), kept inside the image."""
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    height, width = image.shape[:2]
    x = int(min(max(x, 0), max(width - w - 4, 0)))
    y = int(min(max(y, h + baseline + 4), height))
    cv2.rectangle(image, (x, y - h - baseline - 4), (x + w + 4, y), color, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - baseline - 2), _FONT, scale, _text_color(color), thickness, cv2.LINE_AA)


@dataclass(frozen=True, slots=True)
class BoxAnnotator:
    """Box outlines, coloured per track (or per class when untracked)."""

    thickness: int = 2

    def annotate(self, image: Image, detections: Detections) -> Image:
        _check_image(image)
        boxes = np.rint(detections.xyxy).astype(np.int64).tolist()
        for (x1, y1, x2, y2), color in zip(boxes, detection_colors(detections), strict=True):
            # Axis-aligned on whole pixels: anti-aliasing would only blur the colour.
            cv2.rectangle(image, (x1, y1), (x2, y2), color, self.thickness, cv2.LINE_8)
        return image


@dataclass(frozen=True, slots=True)
class LabelAnnotator:
    """``person #12 0.87`` above each box: class name, track id, score (each can be turned off)."""

    show_class: bool = True
    show_track: bool = True
    show_score: bool = True
    scale: float = 0.5

    def text(self, detections: Detections, labels: Sequence[str] = ()) -> list[str]:
        texts = []
        for cls, tid, score in zip(
            detections.class_ids.tolist(), detections.track_ids.tolist(), detections.scores.tolist(), strict=True
        ):
            parts = []
            if self.show_class:
                parts.append(class_name(labels, cls))
            if self.show_track and tid >= 0:
                parts.append(f"#{tid}")
            if self.show_score:
                parts.append(f"{score:.2f}")
            texts.append(" ".join(parts))
        return texts

    def annotate(self, image: Image, detections: Detections, labels: Sequence[str] = ()) -> Image:
        _check_image(image)
        corners = np.rint(detections.xyxy[:, :2]).astype(np.int64).tolist()
        colors = detection_colors(detections)
        for (x1, y1), text, color in zip(corners, self.text(detections, labels), colors, strict=True):
            if text:
                draw_text(image, text, x1, y1, color, self.scale)
        return image


@dataclass(frozen=True, slots=True)
class ZoneAnnotator:
    """A zone's outline, a light fill, and ``name: N inside (in X / out Y)``."""

    color: Color = (0, 200, 255)
    thickness: int = 2
    opacity: float = 0.15  # fill; 0 draws the outline only

    def annotate(self, image: Image, zone: PolygonZoneRule) -> Image:
        _check_image(image)
        polygon = np.rint(zone.polygon).astype(np.int32).reshape(-1, 1, 2)
        if self.opacity > 0:
            # Blend only the bounding rectangle of the zone: a whole-frame blend per zone is wasted work.
            x, y, w, h = cv2.boundingRect(polygon)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
            if x1 > x0 and y1 > y0:
                roi = image[y0:y1, x0:x1]
                overlay = roi.copy()
                cv2.fillPoly(overlay, [polygon - np.array([x0, y0], dtype=np.int32)], self.color)
                cv2.addWeighted(overlay, self.opacity, roi, 1 - self.opacity, 0, dst=roi)
        cv2.polylines(image, [polygon], True, self.color, self.thickness, cv2.LINE_AA)
        text = f"{zone.name}: {zone.occupancy} inside (in {zone.enter_count} / out {zone.exit_count})"
        top = polygon[:, 0, :][np.argmin(polygon[:, 0, 1])]
        draw_text(image, text, int(top[0]), int(top[1]) - 4, self.color)
        return image


@dataclass(frozen=True, slots=True)
class LineAnnotator:
    """The line, an arrow showing the ``in`` direction, and ``name: in X / out Y``."""

    color: Color = (255, 255, 255)
    thickness: int = 2
    arrow: int = 24  # length in pixels of the ``in`` arrow drawn from the line's midpoint

    def annotate(self, image: Image, line: LineCrossingRule) -> Image:
        _check_image(image)
        start, end = line.start, line.end
        cv2.line(image, _pt(start), _pt(end), self.color, self.thickness, cv2.LINE_AA)
        for point in (start, end):
            cv2.circle(image, _pt(point), self.thickness + 2, self.color, cv2.FILLED, cv2.LINE_AA)
        direction = end - start
        # ``in`` is towards the right of start -> end on screen (y down): the normal (-dy, dx).
        normal = np.array([-direction[1], direction[0]]) / float(np.hypot(*direction))
        middle = (start + end) / 2
        if self.arrow > 0:
            cv2.arrowedLine(image, _pt(middle), _pt(middle + normal * self.arrow), self.color, 1, cv2.LINE_AA)
        draw_text(image, f"{line.name}: in {line.in_count} / out {line.out_count}", *_pt(start), self.color)
        return image


def _pt(point: NDArray[np.float64]) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


@dataclass(slots=True)
class Annotator:
    """Zones and lines first (under the boxes), then boxes, then labels, on one copy of the frame."""

    box: BoxAnnotator | None = field(default_factory=BoxAnnotator)
    label: LabelAnnotator | None = field(default_factory=LabelAnnotator)
    zone: ZoneAnnotator | None = field(default_factory=ZoneAnnotator)
    line: LineAnnotator | None = field(default_factory=LineAnnotator)

    def annotate(
        self,
        frame: Frame,
        tracks: Detections | None,
        labels: Sequence[str] | None = (),
        rules: Iterable[Rule] = (),
    ) -> Image:
        """A new annotated image; ``frame.image`` is left untouched. Rules other than zones and lines (plugins)
        are not drawn."""
        image = np.array(frame.image, dtype=np.uint8, copy=True, order="C")  # cv2 needs contiguous memory
        _check_image(image)
        for rule in rules:
            if isinstance(rule, PolygonZoneRule) and self.zone is not None:
                self.zone.annotate(image, rule)
            elif isinstance(rule, LineCrossingRule) and self.line is not None:
                self.line.annotate(image, rule)
        if tracks is not None and len(tracks):
            if self.box is not None:
                self.box.annotate(image, tracks)
            if self.label is not None:
                self.label.annotate(image, tracks, labels or ())
        return image
