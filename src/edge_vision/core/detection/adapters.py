"""Model adapters: one per output layout. Each turns an image into the model's input tensor and the
model's raw outputs into ``Detections`` in source pixels, bit-exact with its family's reference code
(``test/test_parity.py`` checks tensors and boxes against re-implementations of the references).

- ``yolox``: Megvii YOLOX export without decode: [1, A, 5+C] raw head, BGR 0-255, top-left letterbox;
  decode, best class, ``score >= confidence`` and class-aware NMS as ``yolox.utils.postprocess``.
- ``ultralytics``: YOLOv5u/v8/v11-style [1, 4+C, N] (cx, cy, w, h, class scores), RGB/255, centred;
  best class, ``score > confidence`` and class-aware NMS as ``ultralytics non_max_suppression``.
- ``end2end``: NMS-free [1, N, 6] (x1, y1, x2, y2, score, class), e.g. YOLO26/YOLOv10, RGB/255, centred.
- ``rtdetr``: RT-DETR-style set prediction, NMS-free: two outputs ``boxes`` [1, N, 4] and ``scores``
  [1, N, C] (Hugging Face ``pred_boxes`` / ``logits``: sigmoid applied when the values are logits), or one
  [1, N, 4+C] (Ultralytics RT-DETR); boxes normalised cx, cy, w, h; RGB/255, resized without letterbox
  (stretched, as both references do).

Model metadata, where present, overrides the family's defaults (``use_metadata``, called by ``Detector``):
``stride`` (the input must be a multiple of it), ``strides`` (YOLOX head strides, e.g. ``[8, 16, 32, 64]``
for a P6 model), ``normalize`` (``true``: /255, ``false``: 0-255) and ``channels_order`` (``rgb`` / ``bgr``).
The input size and class names come from the backend (``imgsz`` and ``names``).

A frame that is a CuPy array (on the GPU) is pre-processed there with the same arithmetic
(``device_preprocess``), so the TensorRT backend never copies a float tensor to the device.

Non-finite outputs (NaN/inf: a broken export, an FP16 overflow, a bad quantisation) are never detections:
rows with a non-finite score or box are dropped and counted in ``nonfinite`` (per ``postprocess`` call), which
the ``Detector`` reports. ``num_classes`` reads the class count from the output layout where it holds one, so
a labels file of another length is refused at start-up rather than showing classes as numbers.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detection import device_preprocess
from edge_vision.core.detection.letterbox import PAD_VALUE, BoxTransform, Placement, placement, resize_for, stretch
from edge_vision.core.detection.nms import nms_class_aware
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError, ModelError

_255 = np.float32(255)


@dataclass(frozen=True, slots=True)
class Thresholds:
    confidence: float = 0.3
    iou: float = 0.45
    max_detections: int = 300

    def __post_init__(self) -> None:
        for name in ("confidence", "iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} threshold must be within [0, 1], got {value}")
        if self.max_detections < 1:
            raise ConfigError(f"max_detections must be >= 1, got {self.max_detections}")


class _LetterboxAdapter:
    """Shared preprocessing: letterbox, channel order, scale, HWC->NCHW float32."""

    PARAMS: ClassVar[tuple[Param, ...]] = ()
    center = True
    rgb = True
    normalize = True  # divide by 255 (a division, as the reference: x * (1 / 255) differs in the last bit)
    strict_threshold = True  # keep score > confidence (Ultralytics); YOLOX keeps score >= confidence

    def __init__(self, input_size: tuple[int, int], thresholds: Thresholds | None = None) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) < 1:
            raise ModelError(f"input size {self.input_size} is not a valid (height, width): set detector.input_size")
        self.thresholds = thresholds or Thresholds()
        self._pad = np.float32(PAD_VALUE) / _255 if self.normalize else np.float32(PAD_VALUE)
        self.nonfinite = 0  # rows of the last postprocess dropped for a NaN/inf score or box

    def num_classes(self, output_shapes: Sequence[Sequence[int | str | None]]) -> int | None:
        """Classes the model predicts, read from its output shapes; None where the layout does not say."""
        return None

    def use_metadata(self, metadata: Mapping[str, str]) -> None:
        """Take ``normalize``, ``channels_order`` and ``stride`` from the model's metadata (see module doc)."""
        normalize = metadata.get("normalize", "").strip().lower()
        if normalize in ("true", "1", "false", "0"):
            self.normalize = normalize in ("true", "1")
            self._pad = np.float32(PAD_VALUE) / _255 if self.normalize else np.float32(PAD_VALUE)
        order = metadata.get("channels_order", "").strip().lower()
        if order in ("rgb", "bgr"):
            self.rgb = order == "rgb"
        stride = _literal(metadata.get("stride"))
        if isinstance(stride, int) and stride > 0 and any(side % stride for side in self.input_size):
            raise ModelError(f"input size {self.input_size} is not a multiple of the model's stride {stride}")

    def placement(self, image_height: int, image_width: int) -> Placement:
        return placement(image_height, image_width, self.input_size, self.center)

    def preprocess(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float32], BoxTransform]:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 bgr8 image, got shape {image.shape}")
        place = self.placement(image.shape[0], image.shape[1])
        if not isinstance(image, np.ndarray):  # a device (CuPy) frame: build the tensor where it lies
            tensor = device_preprocess.letterbox_tensor(
                image, place, self.input_size, rgb=self.rgb, normalize=self.normalize
            )
            return tensor, place.transform
        resized = resize_for(image, place)
        top, left = place.top, place.left
        bottom, right = top + place.height, left + place.width
        tensor = np.empty((1, 3, *self.input_size), dtype=np.float32)
        chw = tensor[0]
        chw[:, :top] = self._pad
        chw[:, bottom:] = self._pad
        chw[:, top:bottom, :left] = self._pad
        chw[:, top:bottom, right:] = self._pad
        # Written straight into the tensor, no padded uint8 canvas; cv2.split into contiguous planes, then one
        # uint8->float32 copy per channel. At 768x576 -> 640x640: 0.64 ms vs 0.87 ms for copying the strided
        # canvas[:, :, c] views, 2.1 ms for transpose().astype() (2-core x86, median of 7x300).
        region = chw[:, top:bottom, left:right]
        planes = cv2.split(resized)
        for channel in range(3):
            region[channel] = planes[2 - channel if self.rgb else channel]
        if self.normalize:
            np.divide(region, _255, out=region)
        return tensor, place.transform

    def _finish(
        self,
        xyxy: NDArray[np.float32],
        scores: NDArray[np.float32],
        class_ids: NDArray[np.int32],
        transform: BoxTransform,
        *,
        nms: bool,
    ) -> Detections:
        threshold = self.thresholds.confidence
        keep = scores > threshold if self.strict_threshold else scores >= threshold
        xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
        # NaN scores fail the comparison above (counted by the caller's ``_count_nan``); an inf score or a
        # NaN/inf box among the kept rows would reach NMS and the tracker: drop and count them here.
        finite = np.isfinite(scores) & np.isfinite(xyxy).all(axis=1)
        if not finite.all():
            self.nonfinite += int(len(finite) - np.count_nonzero(finite))
            xyxy, scores, class_ids = xyxy[finite], scores[finite], class_ids[finite]
        if nms:
            order = nms_class_aware(xyxy, scores, class_ids, self.thresholds.iou, self.thresholds.max_detections)
        else:
            order = np.argsort(-scores, kind="stable")[: self.thresholds.max_detections]
        return Detections(transform.to_source(xyxy[order]), scores[order], class_ids[order])

    def _count_nan(self, scores: NDArray[np.float32]) -> None:
        """Start a postprocess: count the NaN scores (rows a threshold comparison would drop unseen)."""
        self.nonfinite = int(np.count_nonzero(np.isnan(scores)))

    @staticmethod
    def _single_output(outputs: Sequence[NDArray[np.float32]], ndim: int, what: str) -> NDArray[np.float32]:
        if len(outputs) < 1 or outputs[0].ndim != ndim or outputs[0].shape[0] != 1:
            shapes = [tuple(o.shape) for o in outputs]
            raise ModelError(f"expected one {what} output of batch 1, got outputs of shapes {shapes}")
        return outputs[0][0]


class YoloxAdapter(_LetterboxAdapter):
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    center = False
    rgb = False
    normalize = False
    strict_threshold = False
    strides = (8, 16, 32)

    def num_classes(self, output_shapes: Sequence[Sequence[int | str | None]]) -> int | None:
        values = output_shapes[0][-1] if output_shapes and len(output_shapes[0]) == 3 else None
        return values - 5 if isinstance(values, int) and values > 5 else None

    def __init__(self, input_size: tuple[int, int], thresholds: Thresholds | None = None) -> None:
        super().__init__(input_size, thresholds)
        self._build_grid()

    def use_metadata(self, metadata: Mapping[str, str]) -> None:
        super().use_metadata(metadata)
        strides = _literal(metadata.get("strides"))
        if isinstance(strides, (list, tuple)) and strides and all(isinstance(s, int) and s > 0 for s in strides):
            self.strides = tuple(strides)
            self._build_grid()

    def _build_grid(self) -> None:
        # Grid offsets and strides are constant for a given input size: build them once.
        grids, strides = [], []
        h, w = self.input_size
        for stride in self.strides:
            gy, gx = np.meshgrid(np.arange(h // stride), np.arange(w // stride), indexing="ij")
            grids.append(np.stack([gx, gy], axis=-1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), stride))
        self._grid = np.concatenate(grids).astype(np.float32)
        self._stride = np.concatenate(strides).astype(np.float32)

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: BoxTransform) -> Detections:
        raw = self._single_output(outputs, 3, "[1, anchors, 5+classes] YOLOX")
        if raw.shape[0] != len(self._grid) or raw.shape[1] < 6:
            raise ModelError(
                f"YOLOX output has {raw.shape[0]} anchors x {raw.shape[1]} values; "
                f"input {self.input_size} with strides {self.strides} needs {len(self._grid)} anchors"
            )
        self._count_nan(raw[:, 4])
        # score = objectness * class score <= objectness: drop most anchors before the 80-way argmax.
        candidates = np.flatnonzero(raw[:, 4] >= self.thresholds.confidence)
        raw = raw[candidates]
        class_ids = raw[:, 5:].argmax(axis=1).astype(np.int32)
        scores = raw[:, 4] * raw[np.arange(len(raw)), 5 + class_ids]
        keep = scores >= self.thresholds.confidence
        raw, scores, class_ids, candidates = raw[keep], scores[keep], class_ids[keep], candidates[keep]
        xy = (raw[:, :2] + self._grid[candidates]) * self._stride[candidates]
        half_wh = np.exp(raw[:, 2:4]) * self._stride[candidates] * 0.5
        xyxy = np.concatenate([xy - half_wh, xy + half_wh], axis=1)
        return self._finish(xyxy, scores, class_ids, transform, nms=True)


class UltralyticsAdapter(_LetterboxAdapter):
    PARAMS: ClassVar[tuple[Param, ...]] = ()

    def num_classes(self, output_shapes: Sequence[Sequence[int | str | None]]) -> int | None:
        rows = output_shapes[0][1] if output_shapes and len(output_shapes[0]) == 3 else None
        return rows - 4 if isinstance(rows, int) and rows > 4 else None

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: BoxTransform) -> Detections:
        raw = self._single_output(outputs, 3, "[1, 4+classes, anchors] Ultralytics")
        if raw.shape[0] < 5:
            raise ModelError(f"Ultralytics output needs >= 5 rows (4 box + classes), got {raw.shape[0]}")
        class_scores = raw[4:]
        class_ids = class_scores.argmax(axis=0).astype(np.int32)  # argmax takes a NaN as the maximum
        scores = class_scores[class_ids, np.arange(raw.shape[1])]
        self._count_nan(scores)
        candidates = scores > self.thresholds.confidence
        box = raw[:4, candidates].T
        xyxy = np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
        return self._finish(xyxy, scores[candidates], class_ids[candidates], transform, nms=True)


class EndToEndAdapter(_LetterboxAdapter):
    PARAMS: ClassVar[tuple[Param, ...]] = ()

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: BoxTransform) -> Detections:
        raw = self._single_output(outputs, 3, "[1, N, 6] end-to-end")
        if raw.shape[1] != 6:
            raise ModelError(f"end-to-end output must be [1, N, 6] (x1 y1 x2 y2 score class), got {raw.shape}")
        # A NaN/inf class id would cast to an arbitrary integer: its row counts as a NaN score.
        known = np.isfinite(raw[:, 5])
        scores = raw[:, 4] if known.all() else np.where(known, raw[:, 4], np.float32(np.nan))
        self._count_nan(scores)
        classes = np.where(known, raw[:, 5], -1).astype(np.int32)
        return self._finish(raw[:, :4], scores, classes, transform, nms=False)


class RtDetrAdapter(_LetterboxAdapter):
    """RT-DETR-style outputs (see module doc). The image is stretched to the input size (Ultralytics'
    ``LetterBox(scale_fill=True)``, the Hugging Face image processor's resize), so the padding never appears."""

    PARAMS: ClassVar[tuple[Param, ...]] = ()

    def placement(self, image_height: int, image_width: int) -> Placement:
        return stretch(image_height, image_width, self.input_size)

    def num_classes(self, output_shapes: Sequence[Sequence[int | str | None]]) -> int | None:
        shapes = [s for s in output_shapes if len(s) == 3]
        if len(shapes) >= 2:
            last = [s[2] for s in shapes[:2]]
            if 4 in last:
                other = last[1] if last[0] == 4 else last[0]
                return other if isinstance(other, int) and other >= 1 else None
            return None
        values = shapes[0][2] if shapes else None
        return values - 4 if isinstance(values, int) and values > 4 else None

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: BoxTransform) -> Detections:
        boxes, scores = self._split(outputs)
        seen = scores if np.isfinite(scores).all() else scores[np.isfinite(scores)]  # NaN hides the range
        if seen.size and (float(seen.min()) < 0.0 or float(seen.max()) > 1.0):
            scores = (1.0 / (1.0 + np.exp(-scores))).astype(
                np.float32
            )  # logits (Hugging Face export): sigmoid, as its post-processor
        class_ids = scores.argmax(axis=1).astype(np.int32)
        best = scores[np.arange(len(scores)), class_ids].astype(np.float32)
        self._count_nan(best)
        h, w = self.input_size
        cxcywh = boxes.astype(np.float32) * np.array([w, h, w, h], np.float32)
        xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
        return self._finish(xyxy, best, class_ids, transform, nms=False)

    @staticmethod
    def _split(outputs: Sequence[NDArray[np.float32]]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        shapes = [tuple(o.shape) for o in outputs]
        if len(outputs) >= 2 and all(o.ndim == 3 and o.shape[0] == 1 for o in outputs[:2]):
            first, second = outputs[0][0], outputs[1][0]
            if first.shape[0] == second.shape[0]:
                if first.shape[1] == 4 and second.shape[1] >= 1:
                    return first, second
                if second.shape[1] == 4 and first.shape[1] >= 1:
                    return second, first
        elif len(outputs) == 1 and outputs[0].ndim == 3 and outputs[0].shape[0] == 1 and outputs[0].shape[2] > 4:
            return outputs[0][0][:, :4], outputs[0][0][:, 4:]
        raise ModelError(
            f"RT-DETR-style model needs outputs boxes [1, N, 4] + scores [1, N, C], or one [1, N, 4+C]; got {shapes}"
        )


ADAPTERS: dict[str, type[_LetterboxAdapter]] = {
    "yolox": YoloxAdapter,
    "ultralytics": UltralyticsAdapter,
    "end2end": EndToEndAdapter,
    "rtdetr": RtDetrAdapter,
}


def _literal(value: str | None) -> object:
    if not value:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None


def guess_adapter(
    output_shape: Sequence[int | str | None],
    metadata: Mapping[str, str],
    *,
    outputs: Sequence[Sequence[int | str | None]] = (),
) -> str:
    """Pick the adapter from the model's output layout (and Ultralytics metadata where present); ``outputs``
    are all the output shapes when there are several."""
    if metadata.get("end2end", "").lower() == "true":
        return "end2end"
    if "rt-detr" in metadata.get("description", "").lower():
        return "rtdetr"
    if len(outputs) >= 2 and all(len(s) == 3 for s in outputs[:2]) and 4 in (outputs[0][2], outputs[1][2]):
        return "rtdetr"
    if len(output_shape) == 3:
        second, third = output_shape[1], output_shape[2]
        if third == 6:
            return "end2end"
        if isinstance(second, int) and isinstance(third, int):
            return "ultralytics" if second < third else "yolox"
        # A dynamic-size export: the anchor dimension is the symbolic one, the per-anchor values are fixed.
        if isinstance(second, int) and second > 4 and not isinstance(third, int):
            return "ultralytics"
        if isinstance(third, int) and third > 5 and not isinstance(second, int):
            return "yolox"
    raise ModelError(
        f"cannot tell the model family from output shape {list(output_shape)}; set detector.adapter to one of "
        f"{sorted(ADAPTERS)}"
    )
