"""Class-aware non-maximum suppression."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def nms_class_aware(
    xyxy: NDArray[np.float32],
    scores: NDArray[np.float32],
    class_ids: NDArray[np.int32],
    iou_threshold: float,
    max_detections: int = 300,
) -> NDArray[np.intp]:
    """Indices of the boxes kept, best score first; boxes of different classes never suppress each other.

    OpenCV's batched NMS runs in C++ and is ~10x faster than a numpy loop on thousands of candidates.
    """
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.intp)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, 0.0, iou_threshold)  # type: ignore[arg-type]
    keep = np.asarray(kept, dtype=np.intp).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:max_detections]
