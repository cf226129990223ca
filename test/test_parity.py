"""Parity with the reference pre/post-processing of each model family, re-implemented here from the published code:

- YOLOX: ``yolox/data/data_augment.py::preproc`` and ``yolox/utils/demo_utils.py::demo_postprocess`` (the ONNX
  demo), then ``yolox/utils/boxes.py::postprocess`` (best class, ``obj * cls >= conf``, class-aware
  ``batched_nms``) and the demo's division by the ratio.
- Ultralytics: ``LetterBox(auto=False, center=True, scaleup=True)``, BGR->RGB, ``float() / 255``,
  ``non_max_suppression`` (best class, ``> conf``, class offset ``* 7680``, NMS, ``max_det``) and ``scale_boxes``.

Both run on onnxruntime with the same model and image as the ``Detector``; the input tensors must be bit-identical
and the detections identical (same classes, IoU 1, same scores). The NMS below is a numpy port of torchvision's
``nms`` (float32 IoU, suppress ``iou > threshold``), independent of the OpenCV NMS the Detector uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge_vision.core.detection import Detector

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "assets" / "models"
# Required ones by name (a missing one fails in the fixture), plus whatever else the folder holds (fp32 exports).
MODELS = sorted({"yolov8n_int8.onnx", "yolo26n_int8.onnx"} | {p.name for p in SHARED_MODELS.glob("*.onnx")})
CONFIDENCES = (0.25, 0.05)  # the Ultralytics default, and a low one for many overlapping candidates (NMS at work)
IOU = 0.45
MAX_DET = 300
# Crops of a video frame whose size hits both rounding traps: YOLOX's int(w * r) != round(w * r) at 416, and
# Ultralytics' scale_boxes pad != LetterBox's placement (off by one) at 640.
CROPS = ((500, 252), (250, 609), (300, 333))


# ----------------------------------------------------------------------------------------------- references
def yolox_preproc(img: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``yolox/data/data_augment.py::preproc`` (swap=(2, 0, 1))."""
    padded_img = np.ones((input_size[0], input_size[1], 3), dtype=np.uint8) * 114
    r = min(input_size[0] / img.shape[0], input_size[1] / img.shape[1])
    resized_img = cv2.resize(
        img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR
    ).astype(np.uint8)
    padded_img[: int(img.shape[0] * r), : int(img.shape[1] * r)] = resized_img
    padded_img = padded_img.transpose((2, 0, 1))
    return np.ascontiguousarray(padded_img, dtype=np.float32), r


def yolox_demo_postprocess(outputs: np.ndarray, img_size: tuple[int, int]) -> np.ndarray:
    """``yolox/utils/demo_utils.py::demo_postprocess`` (p6=False): decode the raw head in place."""
    grids, expanded_strides = [], []
    strides = [8, 16, 32]
    hsizes = [img_size[0] // stride for stride in strides]
    wsizes = [img_size[1] // stride for stride in strides]
    for hsize, wsize, stride in zip(hsizes, wsizes, strides, strict=True):
        xv, yv = np.meshgrid(np.arange(wsize), np.arange(hsize))
        grid = np.stack((xv, yv), 2).reshape(1, -1, 2)
        grids.append(grid)
        expanded_strides.append(np.full((*grid.shape[:2], 1), stride))
    grid_all, stride_all = np.concatenate(grids, 1), np.concatenate(expanded_strides, 1)
    outputs[..., :2] = (outputs[..., :2] + grid_all) * stride_all
    outputs[..., 2:4] = np.exp(outputs[..., 2:4]) * stride_all
    return outputs


def torchvision_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """``torchvision.ops.nms``: float32 IoU, a box is suppressed by a kept one when ``iou > iou_threshold``."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou_threshold]
    return np.array(keep, dtype=np.intp)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """``torchvision.ops.batched_nms``: NMS per class, result sorted by decreasing score."""
    keep = [
        np.flatnonzero(classes == c)[torchvision_nms(boxes[classes == c], scores[classes == c], iou_threshold)]
        for c in np.unique(classes)
    ]
    merged = np.concatenate(keep) if keep else np.zeros(0, np.intp)
    return merged[np.argsort(-scores[merged], kind="stable")]


def yolox_reference(session: ort.InferenceSession, img: np.ndarray, conf: float) -> tuple[np.ndarray, ...]:
    input_size = tuple(session.get_inputs()[0].shape[2:])
    tensor, ratio = yolox_preproc(img, input_size)
    output = session.run(None, {session.get_inputs()[0].name: tensor[None, :, :, :]})
    prediction = yolox_demo_postprocess(output[0], input_size)[0]
    # yolox.utils.postprocess: cxcywh -> xyxy, best class, obj * class_conf >= conf_thre, batched_nms.
    xyxy = np.empty_like(prediction[:, :4])
    xyxy[:, 0] = prediction[:, 0] - prediction[:, 2] / 2
    xyxy[:, 1] = prediction[:, 1] - prediction[:, 3] / 2
    xyxy[:, 2] = prediction[:, 0] + prediction[:, 2] / 2
    xyxy[:, 3] = prediction[:, 1] + prediction[:, 3] / 2
    class_pred = prediction[:, 5:].argmax(1)
    class_conf = prediction[np.arange(len(prediction)), 5 + class_pred]
    scores = prediction[:, 4] * class_conf
    mask = scores >= conf
    xyxy, scores, class_pred = xyxy[mask], scores[mask], class_pred[mask]
    keep = batched_nms(xyxy, scores, class_pred, IOU)
    boxes = xyxy[keep]
    boxes /= ratio  # the demo: bboxes /= ratio (float32, as torch)
    return tensor[None], boxes, scores[keep], class_pred[keep]


def ultralytics_letterbox(img: np.ndarray, new_shape: tuple[int, int]) -> np.ndarray:
    """``ultralytics/data/augment.py::LetterBox(auto=False, center=True, scaleup=True)`` (its ``int(round(x))``
    written ``round(x)``: the same int for a float)."""
    shape = img.shape[:2]
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    new_unpad = round(shape[1] * r), round(shape[0] * r)
    dw, dh = (new_shape[1] - new_unpad[0]) / 2, (new_shape[0] - new_unpad[1]) / 2
    if shape[::-1] != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def scale_boxes(img1_shape: tuple[int, int], boxes: np.ndarray, img0_shape: tuple[int, ...]) -> np.ndarray:
    """``ultralytics/utils/ops.py::scale_boxes`` (ratio_pad=None, padding=True) with ``clip_boxes``."""
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    pad_x = round((img1_shape[1] - img0_shape[1] * gain) / 2 - 0.1)
    pad_y = round((img1_shape[0] - img0_shape[0] * gain) / 2 - 0.1)
    boxes = boxes.copy()
    boxes[:, [0, 2]] -= pad_x
    boxes[:, [1, 3]] -= pad_y
    boxes /= gain
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, img0_shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, img0_shape[0])
    return boxes


def ultralytics_reference(session: ort.InferenceSession, img: np.ndarray, conf: float) -> tuple[np.ndarray, ...]:
    imgsz = tuple(session.get_inputs()[0].shape[2:])
    im = np.stack([ultralytics_letterbox(img, imgsz)])
    im = np.ascontiguousarray(im[..., ::-1].transpose((0, 3, 1, 2)))  # BGR to RGB, BHWC to BCHW
    tensor = im.astype(np.float32)
    tensor /= 255  # im.float(); im /= 255
    prediction = session.run(None, {session.get_inputs()[0].name: tensor})[0]
    if prediction.shape[-1] == 6:  # end-to-end: pred[pred[:, 4] > conf][:max_det]
        pred = prediction[0]
        x = pred[pred[:, 4] > conf][:MAX_DET]
        return tensor, scale_boxes(imgsz, x[:, :4], img.shape), x[:, 4], x[:, 5].astype(np.int64)
    # non_max_suppression, agnostic=False, multi_label=False
    xc = prediction[:, 4:].max(1) > conf
    x = prediction.transpose(0, 2, 1)[0].copy()
    xy, wh = x[:, :2].copy(), x[:, 2:4] / 2  # xywh2xyxy
    x[:, :2], x[:, 2:4] = xy - wh, xy + wh
    x = x[xc[0]]
    box, cls = x[:, :4], x[:, 4:]
    confidence, j = cls.max(1), cls.argmax(1)
    filt = confidence > conf
    box, confidence, j = box[filt], confidence[filt], j[filt]
    offset = j[:, None].astype(np.float32) * np.float32(7680)  # boxes offset by class
    keep = torchvision_nms(box + offset, confidence, IOU)[:MAX_DET]
    return tensor, scale_boxes(imgsz, box[keep], img.shape), confidence[keep], j[keep]


# ------------------------------------------------------------------------------------------------- the test
def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64)[:, None], b.astype(np.float64)[None]
    w = (np.minimum(a64[..., 2], b64[..., 2]) - np.maximum(a64[..., 0], b64[..., 0])).clip(0)
    h = (np.minimum(a64[..., 3], b64[..., 3]) - np.maximum(a64[..., 1], b64[..., 1])).clip(0)
    area_a = (a64[..., 2] - a64[..., 0]) * (a64[..., 3] - a64[..., 1])
    area_b = (b64[..., 2] - b64[..., 0]) * (b64[..., 3] - b64[..., 1])
    union = area_a + area_b - w * h
    return np.where(union > 0, w * h / np.where(union > 0, union, 1), (a64 == b64).all(-1))


def assert_same_detections(
    got: tuple[np.ndarray, np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray, np.ndarray], what: str
) -> None:
    boxes, scores, classes = got
    ref_boxes, ref_scores, ref_classes = ref
    assert len(boxes) == len(ref_boxes), f"{what}: {len(boxes)} detections, reference {len(ref_boxes)}"
    iou = iou_matrix(ref_boxes, boxes)
    same = (ref_classes[:, None] == classes[None]) & (np.abs(ref_scores[:, None] - scores[None]) <= 1e-4)
    iou = np.where(same, iou, -1.0)
    unmatched = set(range(len(boxes)))
    for i in np.argsort(-ref_scores, kind="stable"):
        candidates = [k for k in unmatched if iou[i, k] >= 1 - 1e-4]
        assert candidates, (
            f"{what}: reference box {ref_boxes[i]} class {ref_classes[i]} score {ref_scores[i]:.6f} "
            f"has no match (best IoU {iou[i].max() if len(boxes) else 0:.6f})"
        )
        unmatched.remove(max(candidates, key=lambda k: iou[i, k]))


def frames(video: Path) -> Iterator[tuple[str, np.ndarray]]:
    capture = cv2.VideoCapture(str(video))
    try:
        for index in (0, 150, 400, 700):
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            assert ok, f"cannot read frame {index} of {video}"
            yield f"vtest#{index}", frame
    finally:
        capture.release()


def images(shared_assets: Path, video: Path) -> list[tuple[str, np.ndarray]]:
    paths = sorted((shared_assets / "images").glob("*.jpg"))
    assert len(paths) >= 5, f"expected several images in {shared_assets / 'images'}, found {paths}"
    out = [(p.name, cv2.imread(str(p))) for p in paths]
    assert len({img.shape[1] / img.shape[0] for _, img in out}) >= 3, "the images must have several aspect ratios"
    video_frames = list(frames(video))
    out += video_frames
    first = video_frames[0][1]
    out += [(f"vtest-crop{h}x{w}", first[:h, :w]) for h, w in CROPS]
    kite = cv2.imread(str(shared_assets / "images/kite.jpg"))
    out += [(f"kite-crop{s}x{s}", np.ascontiguousarray(kite[:s, :s])) for s in (416, 640)]  # no-resize path
    return out


def check_parity(model_path: Path, labels: Path | None, shared_assets: Path, video: Path) -> int:
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out_shape = session.get_outputs()[0].shape
    reference = ultralytics_reference if out_shape[-1] == 6 or out_shape[1] < out_shape[2] else yolox_reference
    cpu = {"providers": ["CPUExecutionProvider"]}
    total = 0
    for conf in CONFIDENCES:
        detector = Detector.from_config(
            model_path, backend_params=cpu, labels=labels, confidence=conf, iou=IOU, max_detections=MAX_DET
        )
        for name, image in images(shared_assets, video):
            what = f"{model_path.name} on {name} {image.shape[:2]} at confidence {conf}"
            ref_tensor, ref_boxes, ref_scores, ref_classes = reference(session, image, conf)
            tensor, _ = detector.adapter.preprocess(image)
            assert tensor.dtype == ref_tensor.dtype and tensor.shape == ref_tensor.shape, what
            assert np.array_equal(tensor, ref_tensor), f"{what}: input tensors differ"
            if reference is yolox_reference:  # the demo leaves boxes unclipped; the Detector clips (scale_boxes)
                ref_boxes[:, [0, 2]] = ref_boxes[:, [0, 2]].clip(0, image.shape[1])
                ref_boxes[:, [1, 3]] = ref_boxes[:, [1, 3]].clip(0, image.shape[0])
            result = detector.detect(image)
            got = (result.xyxy, result.scores, result.class_ids.astype(np.int64))
            assert_same_detections(got, (ref_boxes, ref_scores, ref_classes), what)
            total += len(ref_boxes)
    return total


def test_yolox_nano_matches_the_yolox_demo(model: Path, shared_assets: Path, video: Path) -> None:
    total = check_parity(model, model.parent / "coco80_names.txt", shared_assets, video)
    assert total > 100  # the comparison is not vacuous


@pytest.mark.parametrize("model_name", MODELS)
def test_shared_models_match_their_reference(model_name: str, shared_assets: Path, video: Path) -> None:
    models = shared_assets / "models"
    assert (models / model_name).is_file(), f"required test asset missing: {models / model_name}"
    labels = REPO / "models" / "coco80_names.txt" if model_name.startswith("yolox") else None
    total = check_parity(models / model_name, labels, shared_assets, video)
    assert total > 100
