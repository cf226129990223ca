"""Inference backends behind one interface: onnxruntime and OpenVINO give the same detections for the same model
and frame; OpenVINO's load-time graph rewrites are bit-exact and match only what they can rewrite exactly; their
parameters, dynamic shapes, metadata and error messages; the RT-DETR adapter; the bench's backend table."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from scipy.optimize import linear_sum_assignment

from edge_vision.core import config, plugins
from edge_vision.core.detection import Detector, metrics, quantize
from edge_vision.core.detection.adapters import RtDetrAdapter, Thresholds, YoloxAdapter, guess_adapter
from edge_vision.core.detection.common import class_names, parse_options, resolve_input_shape
from edge_vision.core.detection.onnxruntime_backend import OnnxRuntimeBackend, split_provider_options
from edge_vision.core.detection.openvino_backend import OpenVinoBackend, rewrite_model
from edge_vision.core.detection.quantize import dequantize_dynamic
from edge_vision.core.errors import ConfigError, ModelError
from edge_vision.core.interfaces import InferenceBackend

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "models" / "coco80_names.txt"
BACKENDS = ("onnxruntime", "openvino")


def video_frames(video: Path, indices: tuple[int, ...]) -> list[np.ndarray]:
    out = []
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indices:
                out.append(frame.to_ndarray(format="bgr24"))
            if index >= max(indices):
                break
    return out


@pytest.fixture(scope="module")
def frames(shared_assets: Path, video: Path) -> list[np.ndarray]:
    images = [cv2.imread(str(shared_assets / "images" / n)) for n in ("bus.jpg", "zidane.jpg", "giraffe.jpg")]
    return images + video_frames(video, (0, 200, 500))


@pytest.fixture(scope="module")
def fp32_models(tmp_path_factory: pytest.TempPathFactory, shared_assets: Path, model: Path) -> dict[str, Path]:
    """YOLOX-nano as shipped; YOLOv8n and YOLO26n as the FP32 models the shipped dynamic-int8 files stand for
    (shared/ holds no FP32 export of them: see SOURCES.md)."""
    folder = tmp_path_factory.mktemp("fp32")
    models = {"yolox_nano": model}
    for name in ("yolov8n", "yolo26n"):
        path = folder / f"{name}.fp32.onnx"
        onnx.save(dequantize_dynamic(onnx.load(str(shared_assets / "models" / f"{name}_int8.onnx"))), str(path))
        models[name] = path
    return models


def assert_same_detections(a, b, *, iou: float = 0.99, score: float = 0.01, what: str = "") -> None:
    """One-to-one: every detection of ``a`` pairs with one of ``b`` of the same class (best IoU assignment)."""
    assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} detections"
    overlaps = metrics.iou_matrix(a.xyxy, b.xyxy) * (a.class_ids[:, None] == b.class_ids[None, :])
    rows, cols = linear_sum_assignment(-overlaps)
    assert np.all(a.class_ids[rows] == b.class_ids[cols]), f"{what}: classes differ"
    assert np.all(overlaps[rows, cols] >= iou), f"{what}: IoU {overlaps[rows, cols].min():.4f}"
    worst = float(np.abs(a.scores[rows] - b.scores[cols]).max()) if len(rows) else 0.0
    assert worst <= score, f"{what}: scores differ by {worst:.4f}"


@pytest.mark.parametrize("name", ["yolox_nano", "yolov8n", "yolo26n"])
def test_backends_give_the_same_detections(name: str, fp32_models: dict[str, Path], frames: list[np.ndarray]) -> None:
    detectors = {
        b: Detector.from_config(fp32_models[name], backend=b, labels=LABELS, confidence=0.25) for b in BACKENDS
    }
    total = 0
    for index, frame in enumerate(frames):
        results = {b: d.detect(frame) for b, d in detectors.items()}
        assert_same_detections(results["onnxruntime"], results["openvino"], what=f"{name} frame {index}")
        total += len(results["onnxruntime"])
    assert total >= 20  # real detections were compared, not empty frames


def test_shipped_dynamic_int8_models_agree_loosely(shared_assets: Path, frames: list[np.ndarray]) -> None:
    """The shipped files quantize activations at run time (DynamicQuantizeLinear). OpenVINO's ONNX frontend
    rewrites that op into a FakeQuantize whose rounding, (x - lo) / (hi - lo) * 255, differs from the spec's
    round(x / scale) + zero_point at half steps; one-step flips compound over 59-92 re-quantizations. Measured
    on bus.jpg: max score difference 0.03 (mean 2e-6). Same classes, boxes within IoU 0.9, scores within 0.05."""
    for name in ("yolov8n_int8.onnx", "yolo26n_int8.onnx"):
        path = shared_assets / "models" / name
        detectors = {b: Detector.from_config(path, backend=b, confidence=0.4) for b in BACKENDS}
        a, b = (detectors[x].detect(frames[0]) for x in BACKENDS)
        assert_same_detections(a, b, iou=0.9, score=0.05, what=name)


def layer_types(backend: OpenVinoBackend) -> list[str]:
    """The layer types of what the CPU plugin actually runs (its execution graph)."""
    ops = backend.compiled.get_runtime_model().get_ordered_ops()
    return [op.get_rt_info()["layerType"].astype(str) for op in ops]


def test_openvino_rewrites_are_bit_exact_on_real_frames(model: Path, tmp_path: Path, frames: list[np.ndarray]) -> None:
    """YOLOX-nano FP32, its INT8 QDQ copy and a dynamic-shape copy run at 384x512: with the rewrites the CPU
    plugin runs no StridedSlice (the reference kernel of the Focus stem) and the outputs equal the graph as read, bit
    for bit, on real frames."""
    tensors = [Detector.from_config(model, labels=LABELS).adapter.preprocess(f)[0] for f in frames]
    int8 = tmp_path / "yolox_nano.int8.onnx"
    quantize.quantize(model, int8, tensors)
    dynamic = dynamic_yolox(model, tmp_path / "dyn.onnx")
    for path, size in ((model, ()), (int8, ()), (dynamic, (384, 512))):
        rewritten = OpenVinoBackend(path, input_size=size)
        as_read = OpenVinoBackend(path, input_size=size, rewrite=False)
        assert rewritten.rewrites == {"space_to_depth": 1, "flatten_transpose": 1} and as_read.rewrites == {}
        # 8 ONNX Slices, 2 of them repeats that the plugin merges: 6 run on its StridedSlice kernel as read.
        assert "StridedSlice" not in layer_types(rewritten) and layer_types(as_read).count("StridedSlice") == 6
        assert rewritten.compiled.outputs[0].get_names() == as_read.compiled.outputs[0].get_names() == {"output"}
        adapter = Detector.from_config(path, labels=LABELS, backend_params={"input_size": list(size)}).adapter
        for index, frame in enumerate(frames):
            tensor = adapter.preprocess(frame)[0]
            a, b = rewritten.infer(tensor)[0], as_read.infer(tensor)[0]
            assert a.shape == b.shape and np.array_equal(a, b), f"{path.name} frame {index}"


def sliced_concat(
    branches: list[dict[int, tuple[int, int]]], *, strided: bool = False, axis: int = 1, shape=(1, 3, 8, 12)
) -> object:
    """A model concatenating ``branches`` of one input: each {axis: (offset, step)}, as one Slice per axis (what
    the ONNX frontend makes of an export) or one StridedSlice (Model Optimizer IRs)."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter(list(shape), np.float32, name="x")
    parts = []
    for branch in branches:
        if strided:
            begin = [branch.get(a, (0, 1))[0] for a in range(len(shape))]
            step = [branch.get(a, (0, 1))[1] for a in range(len(shape))]
            mask = [0 if a in branch else 1 for a in range(len(shape))]
            node = ops.strided_slice(x, begin, [0] * len(shape), step, begin_mask=mask, end_mask=[1] * len(shape))
        else:
            node = x
            for a, (offset, step) in sorted(branch.items()):
                node = ops.slice(node, [offset], [np.iinfo(np.int64).max], [step], [a])
        parts.append(node)
    return ov.Model([ops.concat(parts, axis)], [x], "sliced")


FOCUS = [{2: (0, 2), 3: (0, 2)}, {2: (1, 2), 3: (0, 2)}, {2: (0, 2), 3: (1, 2)}, {2: (1, 2), 3: (1, 2)}]


@pytest.mark.parametrize(
    ("case", "branches", "strided", "axis", "rewritten"),
    [
        ("YOLOX Focus order", FOCUS, False, 1, 1),
        ("row-major order, StridedSlice", [FOCUS[i] for i in (0, 2, 1, 3)], True, 1, 1),
        ("stride 3 on the width only", [{3: (o, 3)} for o in range(3)], False, 1, 1),
        ("on the batch axis", [{3: (o, 2)} for o in range(2)], False, 0, 1),
        # Controls: not a space-to-depth (or not in an order one transpose gives), left as they are.
        ("an offset missing", FOCUS[:3], False, 1, 0),
        ("an offset twice", [*FOCUS[:3], FOCUS[0]], False, 1, 0),
        ("no row-major order", [FOCUS[i] for i in (0, 3, 1, 2)], False, 1, 0),
        ("concat on a sliced axis", [{3: (o, 2)} for o in range(2)], False, 3, 0),
    ],
)
def test_space_to_depth_rewrite_matches_exactly_what_it_can_rewrite(
    case: str, branches: list, strided: bool, axis: int, rewritten: int
) -> None:
    import openvino as ov

    source = np.random.default_rng(0).standard_normal((1, 3, 8, 12)).astype(np.float32)
    expected = np.concatenate(
        [source[tuple(slice(*((b[a][0], None, b[a][1]) if a in b else (None,))) for a in range(4))] for b in branches],
        axis,
    )
    graph = sliced_concat(branches, strided=strided, axis=axis)
    assert rewrite_model(graph) == {"space_to_depth": rewritten, "flatten_transpose": 0}, case
    types = [op.get_type_name() for op in graph.get_ordered_ops()]
    assert ("Slice" in types or "StridedSlice" in types) == (not rewritten), case
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.array_equal(compiled({0: source})[0], expected), case


@pytest.mark.parametrize(
    ("permutation", "axis", "rewritten"), [([0, 2, 1], 2, 1), ([0, 2, 1], 1, 0), ([1, 0, 2], 2, 0)]
)
def test_flatten_transpose_rewrite(permutation: list[int], axis: int, rewritten: int) -> None:
    """Head maps flattened, concatenated and transposed anchors-first (YOLOX's output) become per-map NHWC
    transposes and one concat; other transposes or concat axes are left alone. Same elements, same order."""
    import openvino as ov
    import openvino.opset13 as ops

    shapes = [(1, 5, 4, 6), (1, 5, 2, 3)] if axis == 2 else [(1, 5, 4, 6), (1, 3, 4, 6)]
    params = [ops.parameter(list(s), np.float32) for s in shapes]
    flat = [ops.reshape(p, [s[0], s[1], s[2] * s[3]], special_zero=False) for p, s in zip(params, shapes, strict=True)]
    output = ops.transpose(ops.concat(flat, axis), np.array(permutation, np.int64))
    output.output(0).get_tensor().set_names({"output"})
    graph = ov.Model([output], params, "head")
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    expected = np.concatenate([x.reshape(x.shape[0], x.shape[1], -1) for x in inputs], axis).transpose(permutation)
    assert rewrite_model(graph) == {"space_to_depth": 0, "flatten_transpose": rewritten}
    assert graph.outputs[0].get_names() == {"output"}
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.array_equal(compiled(inputs)[0], expected)


def test_openvino_backend_satisfies_the_protocol_and_reads_metadata(shared_assets: Path) -> None:
    backend = OpenVinoBackend(shared_assets / "models" / "yolov8n_int8.onnx")
    assert isinstance(backend, InferenceBackend)
    assert backend.input_size == (640, 640)
    assert backend.metadata["imgsz"] == "[640, 640]"
    names = backend.class_names()
    assert names is not None and names[0] == "person" and len(names) == 80
    assert backend.output_shapes == [[1, 84, 8400]]


def test_openvino_workers_share_one_compiled_model(model: Path, frames: list[np.ndarray]) -> None:
    """Throughput hint, two workers: one compiled model with two streams, one infer request each."""
    section = config.resolve("detector", {"model": str(model), "backend": "openvino", "hint": "throughput"})
    assert section["hint"] == "throughput" and section["precision"] == "f32"
    first = OpenVinoBackend(model, hint="throughput")
    second = OpenVinoBackend(model, hint="throughput")
    assert first.compiled is second.compiled and first.request is not second.request
    assert first.streams == 2  # 2 cores -> 2 single-thread streams
    other = OpenVinoBackend(model, hint="latency")
    assert other.compiled is not first.compiled


def test_openvino_errors_name_the_problem(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found: .*nope.onnx"):
        OpenVinoBackend(tmp_path / "nope.onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 500)
    with pytest.raises(ModelError, match=r"cannot load model .*corrupt.onnx with openvino"):
        OpenVinoBackend(bad)
    with pytest.raises(ConfigError, match=r"detector.device 'NPU' is not available; OpenVINO sees \['CPU'"):
        OpenVinoBackend(model, device="NPU")
    with pytest.raises(ConfigError, match=r"detector.hint must be one of"):
        Detector.from_config(model, backend="openvino", labels=LABELS, backend_params={"hint": "fast"})
    with pytest.raises(ConfigError, match=r"detector.config: 'NUM_STREAMS' is not key=value"):
        OpenVinoBackend(model, config=["NUM_STREAMS"])
    ir = tmp_path / "model.xml"
    ir.write_text("<net/>")
    with pytest.raises(ModelError, match=r"has no weights file .*model.bin"):
        OpenVinoBackend(ir)


def test_onnxruntime_parameters(model: Path) -> None:
    backend = OnnxRuntimeBackend(
        model,
        providers=["cpu"],
        intra_op_threads=1,
        inter_op_threads=1,
        execution_mode="parallel",
        graph_optimization="basic",
        session_config=["session.intra_op.allow_spinning=0"],
    )
    assert backend.providers == ["CPUExecutionProvider"]
    assert backend.session.get_session_options().intra_op_num_threads == 1
    chosen = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    options = split_provider_options(
        ["trt_engine_cache_enable=1", "trt_engine_cache_path=/tmp/x", "cuda:device_id=0", "cpu:arena=1"], chosen
    )
    assert options == [
        {"trt_engine_cache_enable": "1", "trt_engine_cache_path": "/tmp/x"},
        {"device_id": "0"},
        {"arena": "1"},
    ]
    with pytest.raises(ConfigError, match=r"is for OpenVINOExecutionProvider, which is not among the providers"):
        split_provider_options(["openvino:device_type=CPU"], chosen)
    with pytest.raises(ConfigError, match=r"detector.provider_options: 'trt_fp16' is not key=value"):
        split_provider_options(["trt_fp16"], chosen)
    with pytest.raises(ConfigError, match=r"execution providers \['CUDAExecutionProvider'\] not available"):
        OnnxRuntimeBackend(model, providers=["cuda"])
    with pytest.raises(ConfigError, match=r"detector.execution_mode must be one of"):
        Detector.from_config(model, labels=LABELS, backend_params={"execution_mode": "turbo"})


def test_options_and_metadata_helpers() -> None:
    assert parse_options(["a=1", " b = x=y "], "w") == {"a": "1", "b": "x=y"}
    assert class_names({"names": "{0: 'person', 1: 'car'}"}) == ["person", "car"]
    assert class_names({"names": "['a', 'b']"}) == ["a", "b"]
    assert class_names({}) is None


def dynamic_yolox(source: Path, target: Path) -> Path:
    """YOLOX-nano with symbolic height and width (its graph is size-agnostic except the batch)."""
    model = onnx.load(str(source))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    out = model.graph.output[0].type.tensor_type.shape.dim
    out[1].dim_param = "anchors"
    del model.graph.value_info[:]
    onnx.save(model, str(target))
    return target


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_shape_model_needs_a_size_and_runs_non_square(
    backend: str, model: Path, tmp_path: Path, frames: list[np.ndarray]
) -> None:
    dynamic = dynamic_yolox(model, tmp_path / "dyn.onnx")
    with pytest.raises(ModelError, match=r"dynamic height/width .* set detector.input_size"):
        Detector.from_config(dynamic, backend=backend, labels=LABELS)
    detector = Detector.from_config(
        dynamic, backend=backend, labels=LABELS, confidence=0.25, backend_params={"input_size": [320, 480]}
    )
    assert detector.backend.input_size == (320, 480)
    found = detector.detect(frames[3])  # a 768x576 video frame into a 320x480 input
    assert len(found) >= 3 and np.all(found.xyxy[:, 2] <= 768) and np.all(found.xyxy[:, 3] <= 576)


def test_dynamic_backends_agree_at_a_non_square_size(model: Path, tmp_path: Path, frames: list[np.ndarray]) -> None:
    dynamic = dynamic_yolox(model, tmp_path / "dyn.onnx")
    results = [
        Detector.from_config(
            dynamic, backend=b, labels=LABELS, confidence=0.25, backend_params={"input_size": [384, 512]}
        ).detect(frames[4])
        for b in BACKENDS
    ]
    assert_same_detections(*results, what="384x512")


def test_wrong_input_size_names_the_parameter(model: Path) -> None:
    for backend in BACKENDS:
        with pytest.raises(ModelError, match=r"fixed at 416x416 .* detector.input_size asks for 320x320"):
            Detector.from_config(model, backend=backend, labels=LABELS, backend_params={"input_size": [320]})
    with pytest.raises(ModelError, match=r"fixed batch of 1 but detector.batch is 4"):
        resolve_input_shape([1, 3, 416, 416], input_size=[], batch=4, metadata={}, path=model, name="images")
    with pytest.raises(ConfigError, match=r"detector.input_size must be \[height, width\]"):
        resolve_input_shape([1, 3, -1, -1], input_size=[1, 2, 3], batch=1, metadata={}, path=model, name="x")
    assert resolve_input_shape(
        [-1, 3, -1, -1], input_size=[], batch=2, metadata={"imgsz": "[480, 640]"}, path=model, name="x"
    ) == (2, 3, 480, 640)


def classifier(path: Path) -> Path:
    """A model with an unexpected output: [1, 3] (a classifier)."""
    node_pool = helper.make_node("GlobalAveragePool", ["images"], ["pooled"])
    node_flat = helper.make_node("Flatten", ["pooled"], ["logits"])
    graph = helper.make_graph(
        [node_pool, node_flat],
        "classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_with_unexpected_outputs_is_named(backend: str, tmp_path: Path) -> None:
    path = classifier(tmp_path / "classifier.onnx")
    with pytest.raises(
        ModelError, match=r"cannot tell the model family from output shape \[1, 3\]; set detector.adapter"
    ):
        Detector.from_config(path, backend=backend, labels=LABELS)
    with pytest.raises(ModelError, match=r"classifier.onnx does not fit adapter UltralyticsAdapter"):
        Detector.from_config(path, backend=backend, labels=LABELS, adapter="ultralytics")


def test_rtdetr_adapter_on_both_output_layouts() -> None:
    adapter = RtDetrAdapter((640, 640), Thresholds(confidence=0.5))
    image = np.zeros((480, 960, 3), np.uint8)
    tensor, transform = adapter.preprocess(image)
    assert tensor.shape == (1, 3, 640, 640) and float(tensor.max()) == 0.0  # stretched: no padding anywhere
    boxes = np.array([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1]]], np.float32)  # cx cy w h, normalised
    logits = np.array([[[-5.0, 3.0, -5.0], [-4.0, -4.0, -4.0]]], np.float32)
    found = adapter.postprocess([boxes, logits], transform)
    assert found.class_ids.tolist() == [1]
    np.testing.assert_allclose(found.xyxy[0], [384, 144, 576, 336], atol=1e-3)  # in the 960x480 source
    assert abs(float(found.scores[0]) - 1 / (1 + np.exp(-3.0))) < 1e-6
    single = adapter.postprocess([np.concatenate([boxes, 1 / (1 + np.exp(-logits))], axis=2)], transform)
    np.testing.assert_allclose(single.xyxy, found.xyxy, atol=1e-4)
    assert guess_adapter([1, 300, 4], {}, outputs=[[1, 300, 4], [1, 300, 80]]) == "rtdetr"
    assert guess_adapter([1, 300, 84], {"description": "Ultralytics RT-DETR-l model"}) == "rtdetr"
    with pytest.raises(ModelError, match=r"RT-DETR-style model needs outputs boxes"):
        adapter.postprocess([np.zeros((1, 10, 3), np.float32)], transform)
    assert "rtdetr" in plugins.available("model_adapters")


def test_adapter_reads_strides_normalisation_and_channel_order_from_metadata() -> None:
    adapter = YoloxAdapter((640, 640))
    adapter.use_metadata({"strides": "[8, 16, 32, 64]", "normalize": "true", "channels_order": "rgb"})
    assert adapter.strides == (8, 16, 32, 64) and len(adapter._grid) == 80 * 80 + 40 * 40 + 20 * 20 + 10 * 10
    image = np.full((64, 64, 3), (10, 20, 30), np.uint8)
    tensor, _ = adapter.preprocess(image)
    assert abs(float(tensor[0, 0, 0, 0]) - 30 / 255) < 1e-7  # rgb and /255
    with pytest.raises(ModelError, match=r"not a multiple of the model's stride 64"):
        YoloxAdapter((416, 416)).use_metadata({"stride": "64"})


def test_bench_backend_table(model: Path, video: Path) -> None:
    """One model, every installed CPU backend at its settings: rows, precision, composed fps, and the ratios."""
    from edge_vision import bench_backends
    from edge_vision.core.runtime.build import build_detector

    sections = {name: config.resolve(name, {}) for name in config.SCHEMA}
    sections["camera"] = config.resolve("camera", {"uri": str(video)})
    sections["camera"].pop("cameras")
    detector = build_detector(sections["detector"])
    tensors = [detector.adapter.preprocess(f)[0] for f in video_frames(video, (0, 1))]
    result = bench_backends.measure(sections, [str(model)], tensors, frames=30, rounds=2)
    rows = result["rows"]
    assert [(r["backend"], r["workers"], r["precision"], r["params"].get("rewrite"), r["candidate"]) for r in rows] == [
        ("onnxruntime", 1, "fp32", None, True),
        ("onnxruntime", 2, "fp32", None, True),
        ("openvino", 1, "fp32", None, True),
        ("openvino", 2, "fp32", None, True),
        ("openvino", 2, "fp32", False, False),  # the rewrites off: a reference, never the best
        ("openvino", 2, "bf16", None, False),
    ]
    assert all(r["fps"] > 0 and r["composed_fps"] > 0 and r["latency_p99_ms"] >= r["latency_p50_ms"] for r in rows)
    assert all(r["batch"] == 1 and len(r["fps_rounds"]) == 2 for r in rows)
    ratios = result["ratios"]["yolox_nano.onnx"]
    assert ratios["openvino_vs_onnxruntime_fps"] > 0 and ratios["openvino_vs_onnxruntime_paired"]["rounds"] == 2
    assert ratios["openvino"]["setting"] in ("latency hint", "throughput hint, 2 requests")
    assert all(r["cpu_ms_per_frame"] > 0 and len(r["cpu_rounds"]) == 2 for r in rows)
    assert "OpenVINO / onnxruntime" in bench_backends.format_table(result)
