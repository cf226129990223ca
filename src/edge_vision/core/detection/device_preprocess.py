"""Letterbox + normalise written against the array API shared by numpy and CuPy, so a frame that is already on
the GPU (or is uploaded once, as uint8) becomes the model's input tensor there: the only host copy is the
decoded frame, never the 4x larger float tensor.

The resize is OpenCV's ``INTER_LINEAR`` for 8-bit images re-done with the same fixed-point arithmetic
(11-bit coefficients rounded from float32, horizontal pass in int32, vertical pass
``((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2``, column coefficients clamped at the
borders, row coefficients not), so the tensor is bit-identical to the CPU path's ``cv2.resize``:
``test/test_tensorrt.py`` checks that with numpy on real images, up- and down-scaling. CuPy has no
``cv2.resize``; ``cupyx.scipy.ndimage.zoom(order=1)`` uses another sampling grid (corner-aligned) and differs
by up to tens of grey levels, which would break the parity with the YOLOX and Ultralytics references.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from edge_vision.core.detection.letterbox import PAD_VALUE, Placement

_COEF_SCALE = 2048  # OpenCV INTER_RESIZE_COEF_SCALE (1 << 11)


def array_module(array: Any) -> Any:
    """numpy for a numpy array, cupy for a cupy array (without importing cupy for numpy input)."""
    if type(array).__module__.split(".")[0] == "cupy":
        return importlib.import_module("cupy")
    return np


def _coefficients(xp: Any, source: int, target: int, *, clamp_weights: bool) -> tuple[Any, Any, Any, Any]:
    """Source indices and 11-bit weights of each target pixel along one axis, as ``cv::resize`` computes them."""
    scale = 1.0 / (target / source)  # OpenCV: scale_x = 1. / inv_scale_x, in double
    position = ((xp.arange(target, dtype=xp.float64) + 0.5) * scale - 0.5).astype(xp.float32)
    index = xp.floor(position)
    fraction = (position - index).astype(xp.float32)
    index = index.astype(xp.int64)
    if clamp_weights:  # columns: outside the image the weight moves wholly onto the edge pixel
        outside = (index < 0) | (index >= source - 1)
        fraction = xp.where(outside, xp.float32(0), fraction)
        index = xp.clip(index, 0, source - 1)
    first = xp.clip(index, 0, source - 1)
    second = xp.clip(index + 1, 0, source - 1)
    weight0 = xp.rint((xp.float32(1) - fraction) * xp.float32(_COEF_SCALE)).astype(xp.int32)
    return first, second, weight0, _COEF_SCALE - weight0


def resize_linear(image: Any, width: int, height: int) -> Any:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` for an HxWxC uint8 array of
    either module, bit-exact."""
    xp = array_module(image)
    source_h, source_w = image.shape[:2]
    if (source_w, source_h) == (width, height):
        return image
    x0, x1, a0, a1 = _coefficients(xp, source_w, width, clamp_weights=True)
    y0, y1, b0, b1 = _coefficients(xp, source_h, height, clamp_weights=False)
    a0, a1 = a0[None, :, None], a1[None, :, None]

    def horizontal(rows: Any) -> Any:
        rows = rows.astype(xp.int32)
        return rows[:, x0] * a0 + rows[:, x1] * a1

    top, bottom = horizontal(image[y0]), horizontal(image[y1])
    b0, b1 = b0[:, None, None], b1[:, None, None]
    out = (((b0 * (top >> 4)) >> 16) + ((b1 * (bottom >> 4)) >> 16) + 2) >> 2
    return out.astype(xp.uint8)


def letterbox_tensor(
    image: Any, place: Placement, input_size: tuple[int, int], *, rgb: bool, normalize: bool, batch: int = 1
) -> Any:
    """The (batch, 3, H, W) float32 input tensor of ``image`` (HxWx3 bgr8) placed by ``place``, on the image's
    own device: the same values ``_LetterboxAdapter.preprocess`` writes on the CPU."""
    xp = array_module(image)
    pad = xp.float32(PAD_VALUE) / xp.float32(255) if normalize else xp.float32(PAD_VALUE)
    tensor = xp.full((batch, 3, *input_size), pad, dtype=xp.float32)
    resized = resize_linear(image, place.width, place.height)
    channels = resized[:, :, ::-1] if rgb else resized
    region = channels.transpose(2, 0, 1).astype(xp.float32)
    if normalize:
        region = region / xp.float32(255)
    tensor[0, :, place.top : place.top + place.height, place.left : place.left + place.width] = region
    return tensor
