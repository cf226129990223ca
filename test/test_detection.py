"""Detector on real images with the three bundled/shared models, and the errors bad models give."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_vision.core import plugins
from edge_vision.core.detection import Detector
from edge_vision.core.detection.adapters import guess_adapter
from edge_vision.core.detection.letterbox import letterbox
from edge_vision.core.detection.nms import nms_class_aware
from edge_vision.core.detection.onnxruntime_backend import OnnxRuntimeBackend
from edge_vision.core.errors import ConfigError, ModelError, PluginError
from edge_vision.core.interfaces import InferenceBackend, ModelAdapter


def names(detector: Detector, image: np.ndarray) -> list[str]:
    result = detector.detect(image)
    return [detector.labels[c] for c in result.class_ids]


@pytest.fixture(scope="module")
def yolox(model: Path) -> Detector:
    return Detector.from_config(model, labels=model.parent / "coco80_names.txt", confidence=0.25)


def test_yolox_finds_bus_and_people_with_boxes_in_source_pixels(yolox: Detector, shared_assets: Path) -> None:
    image = cv2.imread(str(shared_assets / "images/bus.jpg"))
    result = yolox.detect(image)
    found = [yolox.labels[c] for c in result.class_ids]
    assert found.count("person") >= 4 and "bus" in found
    bus = result.xyxy[found.index("bus")]
    # bus.jpg is 810x1080 and the bus spans its width: the box must be in source pixels, not 416x416 input.
    assert bus[2] - bus[0] > 600 and bus[3] > 600
    assert (result.xyxy[:, [0, 2]] <= image.shape[1]).all() and (result.xyxy[:, [1, 3]] <= image.shape[0]).all()
    assert result.scores.dtype == np.float32 and (np.diff(result.scores) <= 0).all()


@pytest.mark.parametrize(
    ("model_name", "adapter", "expected"),
    [
        ("yolov8n_int8.onnx", "UltralyticsAdapter", {"person", "bus"}),
        ("yolo26n_int8.onnx", "EndToEndAdapter", {"person", "bus"}),
    ],
)
def test_ultralytics_models_with_embedded_names(
    shared_assets: Path, model_name: str, adapter: str, expected: set[str]
) -> None:
    detector = Detector.from_config(shared_assets / "models" / model_name, confidence=0.25)
    assert type(detector.adapter).__name__ == adapter
    assert len(detector.labels) == 80
    assert expected <= set(names(detector, cv2.imread(str(shared_assets / "images/bus.jpg"))))


def test_models_agree_on_giraffe(yolox: Detector, shared_assets: Path) -> None:
    image = cv2.imread(str(shared_assets / "images/giraffe.jpg"))
    assert {"giraffe", "zebra"} <= set(names(yolox, image))


def test_class_filter(model: Path, shared_assets: Path) -> None:
    detector = Detector.from_config(model, labels=model.parent / "coco80_names.txt", classes=["bus"], confidence=0.25)
    assert names(detector, cv2.imread(str(shared_assets / "images/bus.jpg"))) == ["bus"]
    with pytest.raises(ConfigError, match="unknown classes"):
        Detector.from_config(model, labels=model.parent / "coco80_names.txt", classes=["unicorn"])


def test_letterbox_round_trip() -> None:
    image = np.zeros((576, 768, 3), np.uint8)
    for center in (True, False):
        canvas, transform = letterbox(image, (416, 416), center=center)
        assert canvas.shape == (416, 416, 3)
        box = np.array([[100.0, 50.0, 700.0, 500.0]], np.float32)
        model_box = box * transform.scale + np.array([transform.pad_x, transform.pad_y] * 2, np.float32)
        np.testing.assert_allclose(transform.to_source(model_box), box, atol=0.01)


def test_nms_is_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    keep = nms_class_aware(boxes, scores, np.array([0, 0, 1], np.int32), 0.5)
    assert keep.tolist() == [0, 2]


def test_adapter_guess() -> None:
    assert guess_adapter([1, 3549, 85], {}) == "yolox"
    assert guess_adapter([1, 84, 8400], {}) == "ultralytics"
    assert guess_adapter([1, 300, 6], {}) == "end2end"
    with pytest.raises(ModelError, match="cannot tell the model family"):
        guess_adapter([1, 1000], {})


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found: .*nope.onnx"):
        Detector.from_config(tmp_path / "nope.onnx")


def test_corrupt_model_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 500)
    with pytest.raises(ModelError, match=r"cannot load model .*corrupt.onnx"):
        Detector.from_config(bad, labels=Path(__file__).parents[1] / "models/coco80_names.txt")


def test_model_that_does_not_fit_its_adapter(shared_assets: Path) -> None:
    with pytest.raises(ModelError, match="does not fit adapter YoloxAdapter"):
        Detector.from_config(shared_assets / "models/yolov8n_int8.onnx", adapter="yolox")


def test_unknown_adapter_lists_the_choices(model: Path) -> None:
    with pytest.raises(PluginError, match=r"available: .*yolox"):
        Detector.from_config(model, adapter="yolo-nas", labels=model.parent / "coco80_names.txt")


def test_model_without_names_needs_labels(model: Path) -> None:
    with pytest.raises(ConfigError, match="embeds no class names"):
        Detector.from_config(model)


def test_backend_and_adapter_satisfy_their_protocols(yolox: Detector) -> None:
    assert isinstance(yolox.backend, InferenceBackend) and isinstance(yolox.adapter, ModelAdapter)
    assert {"providers", "intra_op_threads", "allow_spinning"} <= {p.name for p in OnnxRuntimeBackend.PARAMS}
    assert type(yolox.adapter).PARAMS == ()
    assert yolox.backend.input_size == (416, 416)


def test_backend_params_are_validated_with_the_section_name(model: Path) -> None:
    labels = model.parent / "coco80_names.txt"
    detector = Detector.from_config(
        model,
        labels=labels,
        backend_params={"providers": ["CPUExecutionProvider"], "intra_op_threads": 1, "allow_spinning": False},
    )
    assert detector.backend.providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) detector.threads"):
        Detector.from_config(model, labels=labels, backend_params={"threads": 2})
    with pytest.raises(ConfigError, match=r"detector.providers must be a list"):
        Detector.from_config(model, labels=labels, backend_params={"providers": "CPUExecutionProvider"})
    with pytest.raises(ConfigError, match=r"detector.intra_op_threads must be >= 0"):
        Detector.from_config(model, labels=labels, backend_params={"intra_op_threads": -1})
    with pytest.raises(ConfigError, match=r"execution providers \['NopeExecutionProvider'\] not available"):
        Detector.from_config(model, labels=labels, backend_params={"providers": ["NopeExecutionProvider"]})


class _PartialBackend:
    """Loads nothing and lacks most of InferenceBackend."""

    PARAMS = ()

    def __init__(self, model_path: str) -> None:
        self.input_name = "images"

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        return []


def test_backend_missing_protocol_members_is_named(model: Path) -> None:
    plugins.register("backends", "test-partial", _PartialBackend)
    with pytest.raises(PluginError, match=r"does not implement InferenceBackend: it lacks class_names, input_shape, "):
        Detector.from_config(model, backend="test-partial", labels=model.parent / "coco80_names.txt")
