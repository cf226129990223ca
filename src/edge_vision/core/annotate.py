"""Small composable annotators (boxes, labels) and the drawing helpers rules use, with OpenCV.

Each ``*Annotator.annotate(image, ...)`` draws IN PLACE on ``image`` (a bgr8 array the caller owns) and
returns it, so they chain. Rules draw themselves (``Rule.draw``, with ``draw_polygon`` / ``draw_text`` from
here), so a plugin rule needs no change in this module. ``Annotator.annotate(frame, ...)`` composes it all on
a fresh copy: a ``Frame``'s image is shared zero-copy by every stage and must never be written to.
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

__all__ = [
    "PALETTE",
    "Annotator",
    "BoxAnnotator",
    "LabelAnnotator",
    "check_image",
    "color_for",
    "detection_colors",
    "draw_polygon",
    "draw_text",
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


def check_image(image: NDArray[np.uint8]) -> None:
    """ValueError unless ``image`` is an HxWx3 uint8 array (what every drawing function here expects)."""
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


def draw_polygon(
    image: Image,
    polygon: NDArray[np.float64],
    color: Color,
    *,
    thickness: int = 2,
    opacity: float = 0.15,
    label: str = "",
) -> None:
    """A polygon's outline, a light ``opacity`` fill (0 = outline only) and ``label`` above its top vertex."""
    points = np.rint(polygon).astype(np.int32).reshape(-1, 1, 2)
    if opacity > 0:
        # Blend only the bounding rectangle of the polygon: a whole-frame blend per zone is wasted work.
        x, y, w, h = cv2.boundingRect(points)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
        if x1 > x0 and y1 > y0:
            roi = image[y0:y1, x0:x1]
            overlay = roi.copy()
            cv2.fillPoly(overlay, [points - np.array([x0, y0], dtype=np.int32)], color)
            cv2.addWeighted(overlay, opacity, roi, 1 - opacity, 0, dst=roi)
    cv2.polylines(image, [points], True, color, thickness, cv2.LINE_AA)
    if label:
        top = points[:, 0, :][np.argmin(points[:, 0, 1])]
        draw_text(image, label, int(top[0]), int(top[1]) - 4, color)


@dataclass(frozen=True, slots=True)
class BoxAnnotator:
    """Box outlines, coloured per track (or per class when untracked)."""

    thickness: int = 2

    def annotate(self, image: Image, detections: Detections) -> Image:
        check_image(image)
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
        check_image(image)
        corners = np.rint(detections.xyxy[:, :2]).astype(np.int64).tolist()
        colors = detection_colors(detections)
        for (x1, y1), text, color in zip(corners, self.text(detections, labels), colors, strict=True):
            if text:
                draw_text(image, text, x1, y1, color, self.scale)
        return image


@dataclass(slots=True)
class Annotator:
    """Rules first (under the boxes, each drawing itself), then boxes, then labels, on one copy of the image.

    ``draw_rules=False`` leaves the rules out; ``box`` / ``label`` None leave those out."""

    box: BoxAnnotator | None = field(default_factory=BoxAnnotator)
    label: LabelAnnotator | None = field(default_factory=LabelAnnotator)
    draw_rules: bool = True

    def annotate(
        self,
        frame: Frame | Image,
        tracks: Detections | None,
        labels: Sequence[str] | None = (),
        rules: Iterable[Rule] = (),
    ) -> Image:
        """A new annotated image; the frame's (or the given) image is left untouched. Every rule is drawn by
        its own ``draw``, plugins included."""
        source = frame.image if isinstance(frame, Frame) else frame
        image = np.array(source, dtype=np.uint8, copy=True, order="C")  # cv2 needs contiguous memory
        check_image(image)
        if self.draw_rules:
            for rule in rules:
                rule.draw(image)
        if tracks is not None and len(tracks):
            if self.box is not None:
                self.box.annotate(image, tracks)
            if self.label is not None:
                self.label.annotate(image, tracks, labels or ())
        return image
