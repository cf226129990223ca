"""INT8 static quantization: the quantized YOLOX-nano agrees with FP32 on vtest.avi on both backends, mixed
precision by sensitivity, dynamic-int8 models turned back into FP32, calibration data, mAP50, the command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from conftest import LABELS, cli
from edge_vision.core.detection import Detector, calibration, metrics, quantize
from edge_vision.core.detection.adapters import YoloxAdapter
from edge_vision.core.detection.openvino_backend import OpenVinoBackend
from edge_vision.core.errors import ConfigError, ModelError

CALIBRATION_FRAMES = 64
EVAL_FRAMES = 40


@pytest.fixture(scope="module")
def calibration_tensors(video: Path) -> list[np.ndarray]:
    return calibration.tensors(video, YoloxAdapter((416, 416)).preprocess, CALIBRATION_FRAMES)


@pytest.fixture(scope="module")
def eval_images(video: Path) -> list[np.ndarray]:
    return list(quantize.eval_frames(str(video), EVAL_FRAMES, CALIBRATION_FRAMES))


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory: pytest.TempPathFactory, model: Path, calibration_tensors: list) -> Path:
    out = tmp_path_factory.mktemp("int8") / "yolox_nano.int8.onnx"
    quantize.quantize(model, out, calibration_tensors)
    return out


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_yolox_agrees_with_fp32_on_the_video(
    backend: str, model: Path, int8_model: Path, eval_images: list
) -> None:
    result = quantize.accuracy(
        model, int8_model, backend=backend, labels=str(LABELS), frames=eval_images, truths=None, confidence=0.25
    )
    assert result["agreement_map50"] >= 0.9, result


def test_int8_model_is_marked_and_keeps_metadata(
    int8_model: Path, shared_assets: Path, tmp_path: Path, calibration_tensors: list
) -> None:
    loaded = onnx.load(str(int8_model))
    props = {p.key: p.value for p in loaded.metadata_props}
    assert props["edge_vision.precision"] == "int8"
    assert any(n.op_type == "QuantizeLinear" for n in loaded.graph.node)
    assert OpenVinoBackend(int8_model).precision == "int8"
    assert Detector.from_config(int8_model, labels=LABELS).backend.precision == "int8"  # type: ignore[attr-defined]
    # Depthwise convolutions stay FP32 (no faster in INT8 on this CPU, and the main loss of accuracy).
    producers = {o: n for n in loaded.graph.node for o in n.output}
    depthwise = [
        n for n in loaded.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert depthwise and all(n.input[1] not in producers for n in depthwise)  # a float initializer, no DQ


def test_keep_fp32_by_sensitivity(model: Path, tmp_path: Path, calibration_tensors: list) -> None:
    out = tmp_path / "mixed.onnx"
    result = quantize.quantize(model, out, calibration_tensors[:16], keep_fp32=3, ignore_layers=["Conv_41"])
    assert len(result.kept_fp32) == 3 and "Conv_41" not in result.kept_fp32
    scores = [value for _, value in result.sensitivity]
    assert scores == sorted(scores)  # most sensitive (lowest SQNR) first
    loaded = onnx.load(str(out))
    producers = {o: n for n in loaded.graph.node for o in n.output}
    for name in [*result.kept_fp32, "Conv_41"]:
        node = next(n for n in loaded.graph.node if n.name == name)
        assert node.input[1] not in producers, name  # its weight is the float initializer, no DequantizeLinear
    assert {p.key: p.value for p in loaded.metadata_props}["edge_vision.kept_fp32"].count(",") == 3
    with pytest.raises(ConfigError, match=r"--ignore-layers names nodes the model does not have: \['Conv_9999'\]"):
        quantize.quantize(model, out, calibration_tensors[:4], ignore_layers=["Conv_9999"])
    with pytest.raises(ConfigError, match="no calibration frames"):
        quantize.quantize(model, out, [])


def test_dynamic_int8_model_becomes_fp32(shared_assets: Path, tmp_path: Path) -> None:
    source = shared_assets / "models" / "yolov8n_int8.onnx"
    fp32 = quantize.dequantize_dynamic(onnx.load(str(source)))
    assert not quantize.is_dynamic_quantized(fp32)
    path = tmp_path / "yolov8n.fp32.onnx"
    onnx.save(fp32, str(path))
    image = cv2.imread(str(shared_assets / "images" / "bus.jpg"))
    original = Detector.from_config(source, confidence=0.4).detect(image)
    restored = Detector.from_config(path, confidence=0.4).detect(image)
    assert sorted(original.class_ids.tolist()) == sorted(restored.class_ids.tolist())
    # The same network minus run-time activation quantization: agreement near-perfect.
    assert metrics.map50([restored], [metrics.as_truth(original)]) >= 0.9


def test_calibration_frames_from_images_and_video(shared_assets: Path, video: Path, tmp_path: Path) -> None:
    images = list(calibration.frames(shared_assets / "images", 3))
    assert len(images) == 3 and all(i.ndim == 3 for i in images)
    spread = list(calibration.frames(video, 5))
    assert len(spread) == 5 and not np.array_equal(spread[0], spread[1])
    tensors = calibration.tensors(shared_assets / "images", YoloxAdapter((416, 416)).preprocess, 4)
    batches = list(calibration.batches(tensors, 2))
    assert [b.shape for b in batches] == [(2, 3, 416, 416)] * 2
    assert [b.shape for b in calibration.batches(tensors[:3], 2)] == [(2, 3, 416, 416)]  # partial batch dropped
    assert calibration.digest(tensors) != calibration.digest(tensors[:3])
    with pytest.raises(ConfigError, match=r"nope is neither a folder of images nor a video file"):
        list(calibration.frames(tmp_path / "nope", 4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty holds no images"):
        list(calibration.frames(tmp_path / "empty", 4))


def test_map50() -> None:
    truth = metrics.GroundTruth(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), np.array([0, 1], np.int32))
    from edge_vision.core.detections import Detections

    exact = Detections(truth.xyxy.copy(), np.array([0.9, 0.8], np.float32), truth.class_ids.copy())
    assert metrics.map50([exact], [truth]) == pytest.approx(1.0)
    shifted = Detections(truth.xyxy + np.float32(2), exact.scores, exact.class_ids)  # IoU 0.47 small, 0.68 large
    assert metrics.map50([shifted], [truth]) == pytest.approx(0.5)
    wrong_class = Detections(exact.xyxy, exact.scores, np.array([1, 0], np.int32))
    assert metrics.map50([wrong_class], [truth]) == pytest.approx(0.0)


def test_labelled_folders_yolo_and_coco(shared_assets: Path, model: Path, tmp_path: Path) -> None:
    """Labels written from the FP32 model's own detections: mAP50 of that model against them is 1."""
    labels = [line.strip() for line in LABELS.read_text().splitlines() if line.strip()]
    detector = Detector.from_config(model, labels=LABELS, confidence=0.3)
    yolo, coco = tmp_path / "yolo", tmp_path / "coco"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    coco.mkdir()
    document: dict = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(labels)],
    }
    for index, name in enumerate(("bus.jpg", "zidane.jpg")):
        image = cv2.imread(str(shared_assets / "images" / name))
        h, w = image.shape[:2]
        found = detector.detect(image)
        cv2.imwrite(str(yolo / "images" / name), image)
        cv2.imwrite(str(coco / name), image)
        rows = [
            f"{c} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"
            for (x1, y1, x2, y2), c in zip(found.xyxy.tolist(), found.class_ids.tolist(), strict=True)
        ]
        (yolo / "labels" / name.replace(".jpg", ".txt")).write_text("\n".join(rows))
        document["images"].append({"id": index, "file_name": name})
        document["annotations"] += [
            {"image_id": index, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            for (x1, y1, x2, y2), c in zip(found.xyxy.tolist(), found.class_ids.tolist(), strict=True)
        ]
    (coco / "instances.json").write_text(json.dumps(document))
    # JPEG re-encoding moves a few pixels: the boxes stay well above IoU 0.5.
    for folder in (yolo, coco):
        items = metrics.load_labelled(folder, labels)
        assert len(items) == 2
        predictions = [detector.detect(cv2.imread(str(p))) for p, _ in items]
        assert metrics.map50(predictions, [t for _, t in items]) >= 0.95
    with pytest.raises(ConfigError, match=r"labelled folder .*missing does not exist"):
        metrics.load_labelled(tmp_path / "missing", labels)


def test_quantize_command_writes_model_and_report(model: Path, video: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "q.onnx", tmp_path / "q.json"
    result = subprocess.run(
        cli(
            "quantize",
            str(model),
            "--data",
            str(video),
            "-o",
            str(out),
            "--labels",
            str(LABELS),
            "--frames",
            "16",
            "--eval-frames",
            "8",
            "--report",
            str(report),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert out.is_file() and data["int8"] == str(out)
    assert {"fp32 onnxruntime", "fp32 openvino", "int8 onnxruntime", "int8 openvino"} <= set(data["latency"])
    assert "opset 11 -> 13 (per-channel QDQ)" in data["notes"]  # so the FP32 reference is the opset-13 copy
    assert set(data["accuracy"]) == {"onnxruntime", "openvino"}
    assert "agreement_map50" in data["accuracy"]["openvino"] and "speedup_p50" in data["accuracy"]["openvino"]
    assert "latency (same run, interleaved)" in result.stdout
    missing = subprocess.run(
        cli("quantize", str(tmp_path / "nope.onnx"), "--data", str(video)), capture_output=True, text=True
    )
    assert missing.returncode == 2 and "model file not found" in missing.stderr and "Traceback" not in missing.stderr


def test_corrupt_model_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot read model .*bad.onnx as ONNX"):
        quantize.prepare_fp32(bad)
