"""Letterbox resize: keep aspect ratio, pad to the model's input size, and map boxes back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class LetterboxTransform:
    """How a source image was placed in the model input: ``model = source * scale + pad``."""

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


def letterbox(
    image: NDArray[np.uint8],
    size: tuple[int, int],
    *,
    center: bool = True,
    pad_value: int = 114,
) -> tuple[NDArray[np.uint8], LetterboxTransform]:
    """Resize ``image`` (HxWxC) into a ``size`` = (height, width) canvas without distortion.

    ``center=False`` places it at the top-left, as YOLOX was trained; Ultralytics models centre it.
    The source image is only read, never written.
    """
    target_h, target_w = size
    src_h, src_w = image.shape[:2]
    scale = min(target_h / src_h, target_w / src_w)
    new_w, new_h = round(src_w * scale), round(src_h * scale)
    pad_x = (target_w - new_w) / 2 if center else 0.0
    pad_y = (target_h - new_h) / 2 if center else 0.0
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    canvas = np.full((target_h, target_w, image.shape[2]), pad_value, dtype=np.uint8)
    # INTER_LINEAR, as the YOLOX and Ultralytics references do; INTER_AREA costs ~6x more at 768x576.
    canvas[top : top + new_h, left : left + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, LetterboxTransform(scale, float(left), float(top), src_w, src_h)
