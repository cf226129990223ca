"""TensorRT backend. Without a GPU: the engine cache (keys, invalidation, foreign engines), optimisation-profile
shapes, calibration batches, the adapters on engine-shaped output buffers, GPU pre-processing arithmetic
(bit-exact with the CPU path, run here with numpy) and the messages for a missing package. With a CUDA device
(``-m gpu``): engines built from ONNX (FP16, INT8) give the CPU backends' detections, cached builds are reused,
and device pre-processing is bit-exact. GPU tests skip only where no CUDA device exists."""

from __future__ import annotations

import builtins
import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from edge_vision.core import plugins
from edge_vision.core.detection import Detector, calibration, device_preprocess
from edge_vision.core.detection.adapters import EndToEndAdapter, RtDetrAdapter, UltralyticsAdapter, YoloxAdapter
from edge_vision.core.detection.engine_cache import EngineCache, EngineKey, check_compatible, read_sidecar, sidecar_of
from edge_vision.core.detection.letterbox import placement
from edge_vision.core.detection.onnxruntime_backend import OnnxRuntimeBackend
from edge_vision.core.detection.tensorrt_backend import (
    BuildProgress,
    build_engine,
    engine_key,
    onnx_io,
    outputs_for_batch,
    profile_shapes,
)
from edge_vision.core.errors import ConfigError, ModelError

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "models" / "coco80_names.txt"


def key(**changes: Any) -> EngineKey:
    values: dict[str, Any] = {
        "model_sha256": "ab" * 32,
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "tensorrt_version": "10.13.3.9",
        "precision": "fp16",
        "batch_profile": (1, 1, 4),
        "input_size": (640, 640),
        "dla_core": -1,
        "calibration": "",
    }
    values.update(changes)
    return EngineKey(**values)


def block_imports(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as it does where the package is not installed."""
    real = builtins.__import__

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    for name in list(sys.modules):
        if name.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", fake)


# -- the engine cache ----------------------------------------------------------------------------------------


def test_engine_key_changes_with_every_field() -> None:
    base = key()
    assert base.digest() == key().digest() and len(base.digest()) == 16
    changes = {
        "model_sha256": "cd" * 32,
        "gpu_name": "NVIDIA L4",
        "compute_capability": "8.9",
        "tensorrt_version": "10.14.1.48",
        "precision": "int8",
        "batch_profile": (1, 2, 8),
        "input_size": (640, 480),
        "dla_core": 0,
        "calibration": "0123456789abcdef",
    }
    digests = {field: key(**{field: value}).digest() for field, value in changes.items()}
    assert base.digest() not in digests.values() and len(set(digests.values())) == len(changes)
    assert EngineKey.from_dict(base.as_dict()) == base


def test_cache_hits_only_the_same_key_and_prunes_what_it_replaces(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    assert cache.lookup(key(), "yolo") is None
    path = cache.store(key(), "yolo", b"engine-bytes", {"names": "{0: 'person'}"})
    assert path.name == f"yolo.fp16.b1-1-4.{key().digest()}.engine" and path.read_bytes() == b"engine-bytes"
    hit = cache.lookup(key(), "yolo")
    assert hit is not None and hit.path == path and hit.metadata == {"names": "{0: 'person'}"}
    for changed in (key(tensorrt_version="10.14"), key(model_sha256="ef" * 32), key(precision="int8")):
        assert cache.lookup(changed, "yolo") is None  # any change rebuilds
    # An engine whose sidecar does not match its name (copied, edited) is not trusted.
    sidecar_of(path).write_text(sidecar_of(path).read_text().replace("10.13.3.9", "9.0"))
    assert cache.lookup(key(), "yolo") is None
    sidecar_of(path).write_text("{not json")
    assert read_sidecar(path) is None and cache.lookup(key(), "yolo") is None
    # A new TensorRT replaces the old engine for this GPU; another GPU's engine in a shared folder stays.
    cache.store(key(), "yolo", b"old")
    other_gpu = cache.store(key(gpu_name="NVIDIA L4", compute_capability="8.9"), "yolo", b"l4")
    newer = key(tensorrt_version="10.14")
    assert cache.prune(newer, "yolo") == [path]
    assert not path.exists() and other_gpu.exists()
    assert cache.stale(newer, "yolo") == [other_gpu]


def test_engine_for_another_gpu_or_tensorrt_is_named(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    stored = key()
    check_compatible(engine, stored, "NVIDIA H100 80GB HBM3", "9.0", "10.13.3.9")  # same: no error
    with pytest.raises(
        ModelError,
        match=r"model.engine cannot run here: it was built for GPU 'NVIDIA H100 80GB HBM3' \(compute capability 9.0\), this is 'Orin' \(8.7\)",
    ):
        check_compatible(engine, stored, "Orin", "8.7", "10.13.3.9")
    with pytest.raises(
        ModelError, match=r"built with TensorRT 10.13.3.9, this is TensorRT 10.3.0.*edge-vision build-engine"
    ):
        check_compatible(engine, stored, "NVIDIA H100 80GB HBM3", "9.0", "10.3.0")


def test_engine_key_from_a_model_file(model: Path) -> None:
    profile = profile_shapes((1, 3, 416, 416), batch=1, max_batch=4)
    made = engine_key(model, gpu=("GPU", "8.6"), trt_version="10.1", precision="fp16", profile=profile, dla_core=-1)
    assert made.batch_profile == (1, 1, 4) and made.input_size == (416, 416) and made.calibration == ""
    assert made.model_sha256.startswith("e8af074932d4ed7e")  # SOURCES.md's sha256 of yolox_nano.onnx
    int8 = engine_key(
        model,
        gpu=("GPU", "8.6"),
        trt_version="10.1",
        precision="int8",
        profile=profile,
        dla_core=-1,
        calibration_digest="c1",
    )
    assert int8.calibration == "c1" and int8.digest() != made.digest()


# -- shapes, outputs ----------------------------------------------------------------------------------------


def test_profile_shapes() -> None:
    assert profile_shapes((2, 3, 640, 480), batch=2, max_batch=8) == (
        (1, 3, 640, 480),
        (2, 3, 640, 480),
        (8, 3, 640, 480),
    )
    with pytest.raises(ConfigError, match=r"detector.max_batch \(1\) must be >= detector.batch \(2\)"):
        profile_shapes((2, 3, 640, 640), batch=2, max_batch=1)


def test_onnx_io_without_a_runtime(model: Path, shared_assets: Path, tmp_path: Path) -> None:
    name, shape, outputs, metadata = onnx_io(model)
    assert (name, shape, outputs, metadata) == ("images", [1, 3, 416, 416], [[1, 3549, 85]], {})
    _, _, outputs, metadata = onnx_io(shared_assets / "models" / "yolo26n_int8.onnx")
    assert outputs == [[1, 300, 6]] and metadata["end2end"] == "True"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match=r"cannot read model .*bad.onnx as ONNX"):
        onnx_io(bad)


@pytest.mark.parametrize(
    ("model_name", "adapter", "size"),
    [
        ("yolox_nano", YoloxAdapter, 416),
        ("yolov8n_int8", UltralyticsAdapter, 640),
        ("yolo26n_int8", EndToEndAdapter, 640),
    ],
)
def test_adapters_on_engine_shaped_outputs(model_name: str, adapter: type, size: int, shared_assets: Path) -> None:
    """TensorRT's output buffers are sized for the profile's largest batch (here 4) and come back flat: the
    first batch's values, shaped as the context reports, give the same detections as onnxruntime's arrays."""
    path = (
        (REPO / "models" / "yolox_nano.onnx")
        if model_name == "yolox_nano"
        else shared_assets / "models" / f"{model_name}.onnx"
    )
    backend = OnnxRuntimeBackend(path, providers=["cpu"])
    image = cv2.imread(str(shared_assets / "images" / "bus.jpg"))
    model_adapter = adapter((size, size))
    tensor, transform = model_adapter.preprocess(image)
    outputs = backend.infer(tensor)
    buffers = []
    for output in outputs:
        flat = np.full(output.size * 4, np.nan, np.float32)  # batch 4 buffer, only batch 1 was run
        flat[: output.size] = output.reshape(-1)
        buffers.append(flat)
    engine_outputs = outputs_for_batch(buffers, [o.shape for o in outputs])
    expected = model_adapter.postprocess(outputs, transform)
    found = model_adapter.postprocess(engine_outputs, transform)
    assert len(found) == len(expected) >= 4
    np.testing.assert_array_equal(found.xyxy, expected.xyxy)
    with pytest.raises(ModelError, match=r"does not fit its buffer"):
        outputs_for_batch([np.zeros(10, np.float32)], [(1, 84, 8400)])


# -- GPU pre-processing arithmetic, checked with numpy ------------------------------------------------------


def test_device_resize_is_bit_exact_with_opencv(shared_assets: Path, video: Path) -> None:
    images = [cv2.imread(str(p)) for p in sorted((shared_assets / "images").glob("*.jpg"))]
    with av.open(str(video)) as container:
        images.append(next(container.decode(video=0)).to_ndarray(format="bgr24"))
    for image in images:
        h, w = image.shape[:2]
        for size in (
            (416, int(h * 416 / w)),
            (640, round(h * 640 / w)),
            (333, 300),
            (w * 2, h * 2),
            (w - 1, h + 7),
            (77, 123),
        ):
            expected = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            np.testing.assert_array_equal(
                device_preprocess.resize_linear(image, *size), expected, err_msg=f"{image.shape} -> {size}"
            )


@pytest.mark.parametrize("adapter", [YoloxAdapter, UltralyticsAdapter, RtDetrAdapter])
def test_device_letterbox_equals_the_cpu_tensor(adapter: type, shared_assets: Path) -> None:
    """The array-API path (what CuPy runs on the GPU) with numpy: the same tensor, bit for bit."""
    for name in ("bus.jpg", "giraffe.jpg", "zidane.jpg"):
        image = cv2.imread(str(shared_assets / "images" / name))
        for crop in ((500, 252), (250, 609), None):
            part = image[: crop[0], : crop[1]] if crop else image
            for size in ((416, 416), (640, 640), (384, 640)):
                model_adapter = adapter(size)
                expected, _ = model_adapter.preprocess(np.ascontiguousarray(part))
                place = model_adapter.placement(part.shape[0], part.shape[1])
                tensor = device_preprocess.letterbox_tensor(
                    part, place, size, rgb=model_adapter.rgb, normalize=model_adapter.normalize
                )
                np.testing.assert_array_equal(tensor, expected, err_msg=f"{name} {crop} {size}")
    assert placement(576, 768, (416, 416), False).width == 416


# -- missing packages and progress ---------------------------------------------------------------------------


def test_selecting_tensorrt_without_it_names_the_package(monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
    block_imports(monkeypatch, "tensorrt")
    assert "tensorrt" in plugins.available("backends")
    with pytest.raises(
        ModelError, match=r"detector.backend tensorrt needs the Python package tensorrt \(TensorRT 10 or newer"
    ):
        Detector.from_config(model, backend="tensorrt", labels=LABELS)
    with pytest.raises(ModelError, match=r"needs the Python package tensorrt"):
        build_engine(model)
    with pytest.raises(ModelError, match=r"model file not found: .*nope.onnx"):
        Detector.from_config(model.parent / "nope.onnx", backend="tensorrt")
    with pytest.raises(ConfigError, match=r"detector.precision must be one of \['fp16', 'fp32', 'int8'\]"):
        Detector.from_config(model, backend="tensorrt", labels=LABELS, backend_params={"precision": "int4"})


def test_missing_cuda_python_and_cupy_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_vision.core.detection import tensorrt_backend

    block_imports(monkeypatch, "cuda", "cupy")
    with pytest.raises(ModelError, match=r"needs the Python package cuda-python"):
        tensorrt_backend.import_cudart()
    with pytest.raises(ModelError, match=r"preprocess_on_device: on needs the Python package cupy"):
        tensorrt_backend.import_cupy(required=True)
    assert tensorrt_backend.import_cupy(required=False) is None


def test_int8_without_calibration_or_fp32_on_dla_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, model: Path
) -> None:
    with pytest.raises(ConfigError, match=r"detector.dla_core needs detector.precision fp16 or int8"):
        build_engine(model, precision="fp32", dla_core=0)
    with pytest.raises(ModelError, match=r"fixed at 416x416 .* detector.input_size asks for 640x640"):
        build_engine(model, input_size=[640, 640])


def test_build_progress_lines() -> None:
    stream = io.StringIO()
    progress = BuildProgress(stream)
    progress.start("Building engine", None, 3)
    progress.start("Tactic search", "Building engine", 10)
    assert progress.step("Tactic search", 0) is True
    progress.finish("Tactic search")
    progress.finish("Building engine")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[build-engine] Building engine (3 step(s))"
    assert lines[1] == "[build-engine]   Tactic search (10 step(s))"
    assert lines[2].startswith("[build-engine]   Tactic search done in") and lines[3].startswith(
        "[build-engine] Building engine done"
    )


def test_build_engine_command_without_tensorrt_fails_cleanly(model: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, builtins\nreal = builtins.__import__\n"
            "def f(n, *a, **k):\n    if n.split('.')[0] == 'tensorrt': raise ImportError(n)\n    return real(n, *a, **k)\n"
            "builtins.__import__ = f\nfrom edge_vision.cli import main; main()",
            "build-engine",
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        result.returncode == 2
        and "needs the Python package tensorrt" in result.stderr
        and "Traceback" not in result.stderr
    )


# -- on a CUDA device ----------------------------------------------------------------------------------------


def cuda_device() -> str | None:
    """The first CUDA device's name, or None where this machine has none."""
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidia0").exists():
        return None
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return listing.splitlines()[0] if listing.strip() else None


@pytest.fixture(scope="module")
def gpu() -> str:
    name = cuda_device()
    if name is None:
        pytest.skip("no CUDA device on this machine (nvidia-smi finds none)")
    return name  # from here a missing tensorrt / cuda-python / cupy is a failure, not a skip


@pytest.fixture(scope="module")
def frames(shared_assets: Path, video: Path) -> list[np.ndarray]:
    images = [cv2.imread(str(shared_assets / "images" / n)) for n in ("bus.jpg", "zidane.jpg")]
    return images + list(calibration.frames(video, 3))


@pytest.mark.gpu
def test_fp16_engine_matches_onnxruntime(gpu: str, model: Path, tmp_path: Path, frames: list[np.ndarray]) -> None:
    from test_backends import assert_same_detections

    params = {"engine_cache": str(tmp_path), "precision": "fp16"}
    engine = Detector.from_config(model, backend="tensorrt", labels=LABELS, confidence=0.25, backend_params=params)
    reference = Detector.from_config(model, labels=LABELS, confidence=0.25)
    for frame in frames:
        assert_same_detections(engine.detect(frame), reference.detect(frame), iou=0.95, score=0.02, what="fp16")


@pytest.mark.gpu
def test_cached_engine_is_reused_and_rebuilt_on_change(gpu: str, model: Path, tmp_path: Path) -> None:
    first = build_engine(model, cache_dir=str(tmp_path))
    mtime = first.path.stat().st_mtime_ns
    again = build_engine(model, cache_dir=str(tmp_path))
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime
    batched = build_engine(model, cache_dir=str(tmp_path), max_batch=1, precision="fp32")
    assert batched.path != first.path and first.path.exists()


@pytest.mark.gpu
def test_int8_engine_calibrated_on_video(
    gpu: str, model: Path, video: Path, tmp_path: Path, frames: list[np.ndarray]
) -> None:
    from edge_vision.core.detection import metrics

    params = {
        "engine_cache": str(tmp_path),
        "precision": "int8",
        "calibration_data": str(video),
        "calibration_frames": 64,
    }
    engine = Detector.from_config(model, backend="tensorrt", labels=LABELS, confidence=0.25, backend_params=params)
    assert list(tmp_path.glob("*.calibration"))
    reference = Detector.from_config(model, labels=LABELS, confidence=0.25)
    agreement = metrics.map50(
        [engine.detect(f) for f in frames], [metrics.as_truth(reference.detect(f)) for f in frames]
    )
    assert agreement >= 0.8


@pytest.mark.gpu
def test_device_preprocessing_is_bit_exact_on_the_gpu(gpu: str, shared_assets: Path) -> None:
    import cupy

    image = cv2.imread(str(shared_assets / "images" / "bus.jpg"))
    adapter = UltralyticsAdapter((640, 640))
    expected, _ = adapter.preprocess(image)
    on_device, _ = adapter.preprocess(cupy.asarray(image))
    np.testing.assert_array_equal(cupy.asnumpy(on_device), expected)
