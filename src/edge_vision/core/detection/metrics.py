"""mAP50 for the quantization report: against a labelled folder (YOLO txt or COCO json), or against another
model's detections taken as ground truth (agreement of INT8 with FP32). COCO-style: per class, detections
sorted by score, greedy matching at IoU >= 0.5, 101-point interpolated precision; the mean over classes that
have ground truth. Written here (~60 lines of numpy) rather than taken from pycocotools / torchmetrics: both
would pull a C extension or torch into the edge image for one number."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detection.calibration import image_files
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError


@dataclass(slots=True)
class GroundTruth:
    xyxy: NDArray[np.float32]
    class_ids: NDArray[np.int32]


def iou_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return (inter / np.maximum(union, 1e-9)).astype(np.float32)


def average_precision(recall: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    """COCO's 101-point interpolated AP."""
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(0, 1, 101)
    index = np.searchsorted(recall, points, side="left")
    values = [float(envelope[i]) if i < len(envelope) else 0.0 for i in index]
    return float(np.mean(values))


def map50(predictions: Sequence[Detections], truths: Sequence[GroundTruth], iou: float = 0.5) -> float:
    """Mean AP at IoU ``iou`` over the classes present in ``truths`` (images paired by position)."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} ground-truth images")
    classes = sorted({int(c) for t in truths for c in t.class_ids})
    if not classes:
        return 1.0 if all(len(p) == 0 for p in predictions) else 0.0
    aps = []
    for cls in classes:
        scores: list[float] = []
        hits: list[bool] = []
        total = 0
        for pred, truth in zip(predictions, truths, strict=True):
            gt = truth.xyxy[truth.class_ids == cls]
            total += len(gt)
            mask = pred.class_ids == cls
            boxes, conf = pred.xyxy[mask], pred.scores[mask]
            order = np.argsort(-conf, kind="stable")
            overlaps = iou_matrix(boxes[order], gt)
            taken = np.zeros(len(gt), bool)
            for row, det in enumerate(order):
                scores.append(float(conf[det]))
                candidates = np.where(~taken, overlaps[row], -1.0) if len(gt) else np.zeros(0)
                best = int(np.argmax(candidates)) if len(candidates) else -1
                hit = best >= 0 and candidates[best] >= iou
                if hit:
                    taken[best] = True
                hits.append(bool(hit))
        if total == 0:
            continue
        order = np.argsort(-np.asarray(scores), kind="stable")
        true_pos = np.cumsum(np.asarray(hits, bool)[order])
        false_pos = np.cumsum(~np.asarray(hits, bool)[order])
        recall = true_pos / total
        precision = true_pos / np.maximum(true_pos + false_pos, 1)
        aps.append(average_precision(recall, precision))
    return float(np.mean(aps)) if aps else 0.0


def as_truth(detections: Detections) -> GroundTruth:
    return GroundTruth(detections.xyxy.astype(np.float32), detections.class_ids.astype(np.int32))


def load_labelled(folder: str | Path, labels: Sequence[str]) -> list[tuple[Path, GroundTruth]]:
    """Images and boxes (source pixels) of a labelled folder: YOLO (``images/x.jpg`` + ``labels/x.txt`` with
    ``class cx cy w h`` normalised, or the .txt beside the image) or COCO (one ``*.json`` with ``images``,
    ``annotations`` and ``categories``; categories matched to the model's labels by name)."""
    import cv2

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"labelled folder {root} does not exist")
    coco = sorted(root.glob("*.json")) + sorted((root / "annotations").glob("*.json"))
    if coco:
        return _load_coco(root, coco[0], labels)
    items = []
    for image_path in image_files(root):
        candidates = [image_path.with_suffix(".txt")]
        parts = list(image_path.parts)
        if "images" in parts:
            index = len(parts) - 1 - parts[::-1].index("images")
            candidates.append(Path(*parts[:index], "labels", *parts[index + 1 :]).with_suffix(".txt"))
        label_file = next((c for c in candidates if c.is_file()), None)
        if label_file is None:
            continue
        image = cv2.imread(str(image_path))
        if image is None:
            raise ConfigError(f"cannot read image {image_path}")
        h, w = image.shape[:2]
        rows = [line.split() for line in label_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        try:
            values = np.array([[float(v) for v in row[:5]] for row in rows], np.float32).reshape(-1, 5)
        except ValueError as exc:
            raise ConfigError(f"{label_file}: not YOLO 'class cx cy w h' lines: {exc}") from exc
        cx, cy, bw, bh = values[:, 1] * w, values[:, 2] * h, values[:, 3] * w, values[:, 4] * h
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
        items.append((image_path, GroundTruth(xyxy, values[:, 0].astype(np.int32))))
    if not items:
        raise ConfigError(f"labelled folder {root} has no image with a YOLO label file nor a COCO json")
    return items


def _load_coco(root: Path, annotations: Path, labels: Sequence[str]) -> list[tuple[Path, GroundTruth]]:
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        images = {i["id"]: i["file_name"] for i in data["images"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{annotations} is not a COCO detection json: {exc}") from exc
    unknown = sorted({n for n in categories.values() if n not in labels})
    if unknown:
        raise ConfigError(f"{annotations}: categories {unknown[:5]} are not among the model's labels")
    boxes: dict[int, list[list[float]]] = {i: [] for i in images}
    for ann in data.get("annotations", []):
        x, y, w, h = ann["bbox"]
        boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h, labels.index(categories[ann["category_id"]])])
    items = []
    for image_id, name in images.items():
        path = next((p for p in (root / name, root / "images" / name) if p.is_file()), None)
        if path is None:
            raise ConfigError(f"{annotations} names image {name}, not found under {root}")
        values = np.array(boxes.get(image_id, []), np.float32).reshape(-1, 5)
        items.append((path, GroundTruth(values[:, :4], values[:, 4].astype(np.int32))))
    return items
