"""Letterbox resize: keep aspect ratio, pad to the model's input size, and map boxes back.

Two placements, each bit-exact with its reference implementation:

- ``center=False``: YOLOX ``yolox/data/data_augment.py::preproc``: ``r = min(in_h / h, in_w / w)``, resized
  to ``(int(w * r), int(h * r))`` (truncated), top-left, padded with 114; boxes map back as ``box / r``.
- ``center=True``: Ultralytics ``LetterBox(auto=False, center=True, scaleup=True)``: resized to
  ``round(w * r), round(h * r)``, centred with ``round(d - 0.1)`` before and ``round(d + 0.1)`` after,
  padded with 114; boxes map back with ``scale_boxes``, which recomputes its own pad
  ``round((in_w - w * r) / 2 - 0.1)`` (it can differ by one pixel from the placement: kept, for parity).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class LetterboxTransform:
    """How boxes in the model input map back to the source image: ``source = (model - pad) / scale``."""

    scale: float
    pad_x: float
    pad_y: float
    source_width: int
    source_height: int

    def to_source(self, xyxy: NDArray[np.float32]) -> NDArray[np.float32]:
        """Map (N, 4) boxes from model-input pixels back to source pixels, clipped to the image."""
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        limit = np.array([self.source_width, self.source_height] * 2, np.float32)
        out = (np.asarray(xyxy, np.float32) - pad) / np.float32(self.scale)
        return np.clip(out, 0, limit).astype(np.float32, copy=False)


@dataclass(frozen=True, slots=True)
class StretchTransform:
    """A plain resize to the input size (no letterbox, RT-DETR): ``source = model / (scale_x, scale_y)``."""

    scale_x: float
    scale_y: float
    source_width: int
    source_height: int

    def to_source(self, xyxy: NDArray[np.float32]) -> NDArray[np.float32]:
        scale = np.array([self.scale_x, self.scale_y] * 2, np.float32)
        limit = np.array([self.source_width, self.source_height] * 2, np.float32)
        return np.clip(np.asarray(xyxy, np.float32) / scale, 0, limit).astype(np.float32, copy=False)


BoxTransform = LetterboxTransform | StretchTransform


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the resized source lies in the model input: ``width`` x ``height`` at (``left``, ``top``)."""

    width: int
    height: int
    left: int
    top: int
    transform: BoxTransform


def stretch(source_height: int, source_width: int, size: tuple[int, int]) -> Placement:
    """The whole input, aspect ratio not kept (RT-DETR's references resize this way)."""
    h, w = size
    return Placement(w, h, 0, 0, StretchTransform(w / source_width, h / source_height, source_width, source_height))


@lru_cache(maxsize=16)
def placement(source_height: int, source_width: int, size: tuple[int, int], center: bool) -> Placement:
    """The letterbox geometry for a source size (cached: a stream keeps one size)."""
    target_h, target_w = size
    r = min(target_h / source_height, target_w / source_width)
    if center:
        new_w, new_h = round(source_width * r), round(source_height * r)
        left, top = round((target_w - new_w) / 2 - 0.1), round((target_h - new_h) / 2 - 0.1)
        pad_x = round((target_w - source_width * r) / 2 - 0.1)
        pad_y = round((target_h - source_height * r) / 2 - 0.1)
    else:
        new_w, new_h = int(source_width * r), int(source_height * r)
        left = top = pad_x = pad_y = 0
    if new_w < 1 or new_h < 1:
        raise ValueError(f"a {source_width}x{source_height} image shrinks to nothing in a {size} input")
    transform = LetterboxTransform(r, float(pad_x), float(pad_y), source_width, source_height)
    return Placement(new_w, new_h, left, top, transform)


def resize_for(image: NDArray[np.uint8], place: Placement) -> NDArray[np.uint8]:
    """``image`` resized to the placement's size with INTER_LINEAR, as both references do (INTER_AREA costs
    ~6x more at 768x576); an image already at that size is returned as it is."""
    if image.shape[1] == place.width and image.shape[0] == place.height:
        return image
    return cv2.resize(image, (place.width, place.height), interpolation=cv2.INTER_LINEAR)


def letterbox(
    image: NDArray[np.uint8],
    size: tuple[int, int],
    *,
    center: bool = True,
    pad_value: int = PAD_VALUE,
) -> tuple[NDArray[np.uint8], BoxTransform]:
    """Resize ``image`` (HxWxC) into a ``size`` = (height, width) canvas without distortion.

    ``center=False`` places it at the top-left as YOLOX does, ``center=True`` centres it as Ultralytics does
    (see the module docstring). The source image is only read, never written.
    """
    place = placement(image.shape[0], image.shape[1], (int(size[0]), int(size[1])), center)
    canvas = np.full((size[0], size[1], image.shape[2]), pad_value, dtype=np.uint8)
    canvas[place.top : place.top + place.height, place.left : place.left + place.width] = resize_for(image, place)
    return canvas, place.transform
