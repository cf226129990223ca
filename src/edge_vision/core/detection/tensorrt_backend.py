"""TensorRT inference backend (TensorRT 10+ Python API: named I/O tensors, ``execute_async_v3`` on a CUDA stream;
device memory and streams through cuda-python).

``detector.model`` is an ONNX file (the engine is built once for this GPU and cached, see ``engine_cache``) or
a serialized engine (``.engine`` / ``.plan``; its sidecar, when present, is checked against this GPU and
TensorRT). FP16 and INT8 (entropy calibration on a folder of images or a video, with a calibration cache),
dynamic batch profiles, DLA cores. ``edge-vision build-engine`` builds ahead of time with a progress display.

With CuPy installed, the frame is uploaded once as uint8 and letterboxed + normalised on the GPU, on this
backend's stream (``upload``; ``device_preprocess`` is bit-exact with the CPU path), so the float tensor never
crosses PCIe; without CuPy the CPU tensor is copied up.

Nothing here imports tensorrt, cuda-python or CuPy at module import: selecting the backend without them is a
``ModelError`` naming the package. The pure parts (shapes, keys, calibration data, errors) are tested without
a GPU; the rest runs only where a CUDA device exists (``pytest -m gpu``).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detection import calibration, common
from edge_vision.core.detection.engine_cache import (
    ENGINE_SUFFIXES,
    CachedEngine,
    EngineCache,
    EngineKey,
    check_compatible,
    read_sidecar,
)
from edge_vision.core.errors import ConfigError, ModelError

PRECISIONS = ("fp16", "fp32", "int8")


# -- optional dependencies ------------------------------------------------------------------------------------


def import_tensorrt() -> Any:
    try:
        tensorrt = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise ModelError(
            "detector.backend tensorrt needs the Python package tensorrt (TensorRT 10 or newer, e.g. "
            "pip install tensorrt-cu12) and an NVIDIA GPU; it is not installed here"
        ) from exc
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise ModelError(f"detector.backend tensorrt needs TensorRT 10 or newer, found {tensorrt.__version__}")
    return tensorrt


def import_cudart() -> Any:
    try:
        return importlib.import_module("cuda.bindings.runtime")  # cuda-python >= 12.6
    except ImportError:
        try:
            return importlib.import_module("cuda.cudart")  # older cuda-python
        except ImportError as exc:
            raise ModelError(
                "detector.backend tensorrt needs the Python package cuda-python (pip install cuda-python) for "
                "device memory and streams; it is not installed here"
            ) from exc


def import_cupy(required: bool) -> Any:
    try:
        return importlib.import_module("cupy")
    except ImportError as exc:
        if required:
            raise ModelError(
                "detector.preprocess_on_device: on needs the Python package cupy (e.g. pip install cupy-cuda12x)"
            ) from exc
        return None


def cuda_call(result: Any, what: str) -> Any:
    """cuda-python returns (error, value...): raise a ModelError naming the call on failure."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise ModelError(f"CUDA {what} failed: {error}")
    return values[0] if len(values) == 1 else tuple(values)


def gpu_info(device: int = 0) -> tuple[str, str]:
    """(name, compute capability "major.minor") of CUDA device ``device``."""
    cudart = import_cudart()
    count = cuda_call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if device >= count:
        raise ConfigError(f"detector.device {device} does not exist: this machine has {count} CUDA device(s)")
    props = cuda_call(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"


# -- pure parts: shapes, keys -------------------------------------------------------------------------------


def onnx_io(path: Path) -> tuple[str, list[int], list[list[int | str | None]], dict[str, str]]:
    """Input name, input shape (-1 = dynamic), output shapes and metadata of an ONNX model, without a runtime."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        raise ModelError(f"cannot read model {path} as ONNX: {exc}") from exc
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"model {path} has {len(inputs)} inputs; a detector model needs exactly one image input")

    def dims(value: Any) -> list[Any]:
        shape = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape]

    shape = [d if isinstance(d, int) and d > 0 else -1 for d in dims(inputs[0])]
    outputs = [dims(o) for o in model.graph.output]
    return inputs[0].name, shape, outputs, {p.key: p.value for p in model.metadata_props}


def profile_shapes(
    input_shape: Sequence[int], *, batch: int, max_batch: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of the optimisation profile: batch 1..``max_batch``, optimised for ``batch``;
    ``input_shape`` is the resolved [N, 3, H, W]. A fixed-batch model gets its own batch three times."""
    if max_batch < batch:
        raise ConfigError(f"detector.max_batch ({max_batch}) must be >= detector.batch ({batch})")
    _, channels, height, width = input_shape
    return (1, channels, height, width), (batch, channels, height, width), (max_batch, channels, height, width)


def engine_key(
    model: Path,
    *,
    gpu: tuple[str, str],
    trt_version: str,
    precision: str,
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    dla_core: int,
    calibration_digest: str = "",
) -> EngineKey:
    low, opt, high = profile
    return EngineKey(
        model_sha256=common.file_sha256(model),
        gpu_name=gpu[0],
        compute_capability=gpu[1],
        tensorrt_version=trt_version,
        precision=precision,
        batch_profile=(low[0], opt[0], high[0]),
        input_size=(opt[2], opt[3]),
        dla_core=dla_core,
        calibration=calibration_digest if precision == "int8" else "",
    )


def outputs_for_batch(buffers: Sequence[NDArray[Any]], shapes: Sequence[Sequence[int]]) -> list[NDArray[np.float32]]:
    """The outputs of one run out of buffers sized for the profile's largest batch: the first
    ``prod(shape)`` values of each, in the shape the context reports for the batch it ran."""
    result = []
    for buffer, shape in zip(buffers, shapes, strict=True):
        size = int(np.prod(shape))
        if size > buffer.size:
            raise ModelError(f"engine output of shape {list(shape)} does not fit its buffer of {buffer.size} values")
        result.append(buffer.reshape(-1)[:size].reshape(shape).astype(np.float32, copy=False))
    return result


# -- building -----------------------------------------------------------------------------------------------


class BuildProgress:
    """What the progress monitor prints: one line per phase and a step counter, to ``stream`` (stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started: dict[str, tuple[float, int]] = {}
        self.depth: dict[str, int] = {}
        self.lock = threading.Lock()

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self.lock:
            self.depth[phase] = self.depth.get(parent or "", -1) + 1
            self.started[phase] = (time.monotonic(), steps)
            self.stream.write(f"[build-engine] {'  ' * self.depth[phase]}{phase} ({steps} step(s))\n")
            self.stream.flush()

    def step(self, phase: str, step: int) -> bool:
        with self.lock:
            _, steps = self.started.get(phase, (0.0, 0))
            if self.stream.isatty() and steps > 1:
                self.stream.write(f"\r[build-engine] {'  ' * self.depth.get(phase, 0)}{phase}: {step + 1}/{steps}")
                self.stream.flush()
        return True  # False would cancel the build

    def finish(self, phase: str) -> None:
        with self.lock:
            began, _ = self.started.pop(phase, (time.monotonic(), 0))
            if self.stream.isatty():
                self.stream.write("\n")
            self.stream.write(
                f"[build-engine] {'  ' * self.depth.get(phase, 0)}{phase} done in {time.monotonic() - began:.1f} s\n"
            )
            self.stream.flush()


def _progress_monitor(trt: Any, progress: BuildProgress) -> Any:
    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return progress.step(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            progress.finish(phase_name)

    return Monitor()


def _entropy_calibrator(trt: Any, cudart: Any, batches: list[NDArray[np.float32]], cache_file: Path) -> Any:
    """``IInt8EntropyCalibrator2`` over prepared batches, one device buffer, the cache file read and written."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches: Iterator[NDArray[np.float32]] = iter(batches)
            self.size = batches[0].shape[0] if batches else 1
            self.nbytes = batches[0].nbytes if batches else 0
            self.device = cuda_call(cudart.cudaMalloc(max(self.nbytes, 4)), "cudaMalloc (calibration)")

        def get_batch_size(self) -> int:
            return int(self.size)

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            cuda_call(
                cudart.cudaMemcpy(
                    self.device, batch.ctypes.data, batch.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
                ),
                "cudaMemcpy (calibration)",
            )
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

        def __del__(self) -> None:
            cudart.cudaFree(self.device)

    return Calibrator()


def build_engine(
    model: str | os.PathLike[str],
    *,
    precision: str = "fp16",
    batch: int = 1,
    max_batch: int = 1,
    input_size: Sequence[int] = (),
    dla_core: int = -1,
    workspace_mb: int = 2048,
    calibration_data: str = "",
    calibration_frames: int = 256,
    adapter: str = "auto",
    cache_dir: str = "",
    device: int = 0,
    rebuild: bool = False,
    progress: BuildProgress | None = None,
) -> CachedEngine:
    """The engine for ``model`` on this GPU: from the cache when its key matches, else built (and cached, and
    the engine it replaces pruned). ``progress`` (None = stderr) shows the phases of a build."""
    path = common.model_path_of(model)
    if precision not in PRECISIONS:
        raise ConfigError(f"detector.precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if dla_core >= 0 and precision == "fp32":
        raise ConfigError("detector.dla_core needs detector.precision fp16 or int8 (DLA has no FP32)")
    name, raw_shape, output_shapes, metadata = onnx_io(path)
    shape = common.resolve_input_shape(
        raw_shape, input_size=input_size, batch=batch, metadata=metadata, path=path, name=name
    )
    if raw_shape[0] != -1 and max_batch != raw_shape[0]:
        max_batch = batch = raw_shape[0]  # a fixed-batch model has one profile: its own batch
    profile = profile_shapes(shape, batch=batch, max_batch=max_batch)
    trt = import_tensorrt()
    cudart = import_cudart()
    cuda_call(cudart.cudaSetDevice(device), "cudaSetDevice")
    gpu = gpu_info(device)
    cache = EngineCache(cache_dir or None)
    stem = path.stem
    calibration_items: list[NDArray[np.float32]] = []
    calibration_cache = cache.folder / f"{stem}.{common.file_sha256(path)[:16]}.calibration"
    if precision == "int8" and calibration_data:
        calibration_items = calibration_inputs(
            path, calibration_data, calibration_frames, adapter, shape, output_shapes, metadata
        )
    elif precision == "int8" and not calibration_cache.is_file():
        raise ConfigError(
            f"detector.precision int8 needs detector.calibration_data (a folder of images or a video) to calibrate "
            f"{path}; no calibration cache {calibration_cache} exists yet"
        )
    digest = calibration.digest(calibration_items) if calibration_items else _file_digest(calibration_cache)
    key = engine_key(
        path,
        gpu=gpu,
        trt_version=str(trt.__version__),
        precision=precision,
        profile=profile,
        dla_core=dla_core,
        calibration_digest=digest if precision == "int8" else "",
    )
    if not rebuild and (cached := cache.lookup(key, stem)) is not None:
        return cached
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.progress_monitor = _progress_monitor(trt, progress or BuildProgress())
    optimisation = builder.create_optimization_profile()
    optimisation.set_shape(name, *profile)
    config.add_optimization_profile(optimisation)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers fall back to FP16, not FP32, where INT8 has no kernel
    calibrator = None
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        batches = list(calibration.batches(calibration_items, profile[1][0])) if calibration_items else []
        calibrator = _entropy_calibrator(trt, cudart, batches, calibration_cache)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(optimisation)
    if dla_core >= 0:
        if dla_core >= builder.num_DLA_cores:
            raise ConfigError(f"detector.dla_core {dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"TensorRT failed to build an engine for {path} ({precision}); see the log above")
    if precision == "int8" and not calibration_items:
        key = EngineKey.from_dict({**key.as_dict(), "calibration": _file_digest(calibration_cache)})
    cache.prune(key, stem)
    stored = cache.store(key, stem, bytes(serialized), metadata)
    del calibrator
    return CachedEngine(stored, key, metadata)


def calibration_inputs(
    model: Path,
    source: str,
    count: int,
    adapter: str,
    shape: Sequence[int],
    output_shapes: list[list[int | str | None]],
    metadata: Mapping[str, str],
) -> list[NDArray[np.float32]]:
    """Calibration tensors pre-processed by the model's adapter, as the detector will feed it."""
    from edge_vision.core import plugins
    from edge_vision.core.detection.adapters import Thresholds, guess_adapter

    name = guess_adapter(output_shapes[0], metadata, outputs=output_shapes) if adapter == "auto" else adapter
    model_adapter = plugins.build(
        "model_adapters", name, {}, where="detector", input_size=(shape[2], shape[3]), thresholds=Thresholds()
    )
    if callable(getattr(model_adapter, "use_metadata", None)):
        model_adapter.use_metadata(metadata)
    items = calibration.tensors(source, model_adapter.preprocess, count)
    if not items:
        raise ConfigError(f"detector.calibration_data {source} gave no frames to calibrate {model}")
    return items


def _file_digest(path: Path) -> str:
    return common.file_sha256(path)[:16] if path.is_file() else ""


# -- running ------------------------------------------------------------------------------------------------

_lock = threading.Lock()
# Deserialized engines (with the runtime that must outlive each) by file, mtime and DLA core: every worker's
# backend shares one engine and has its own execution context and stream. Held for the process's life.
_engines: dict[tuple[Any, ...], tuple[Any, Any]] = {}


class TensorRtBackend:
    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("precision", "fp16", "engine precision when building from ONNX", choices=PRECISIONS),
        Param("max_batch", 1, "largest batch of the engine's optimisation profile (dynamic-batch models)", min=1),
        Param("dla_core", -1, "DLA core to build for (Jetson; -1 = GPU only, GPU fallback for the rest)", min=-1),
        Param("workspace_mb", 2048, "builder workspace (MiB)", min=16),
        Param("calibration_data", "", "INT8: folder of images or a video to calibrate on"),
        Param("calibration_frames", 256, "INT8: frames taken from calibration_data", min=1),
        Param("engine_cache", "", "folder of built engines (empty = ~/.cache/edge_vision/engines)"),
        Param("device", 0, "CUDA device index", min=0),
        Param(
            "preprocess_on_device",
            "auto",
            "letterbox + normalise on the GPU with CuPy (auto = when CuPy is installed)",
            choices=("auto", "on", "off"),
        ),
        *common.INPUT_PARAMS,
    )

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        precision: str = "fp16",
        max_batch: int = 1,
        dla_core: int = -1,
        workspace_mb: int = 2048,
        calibration_data: str = "",
        calibration_frames: int = 256,
        engine_cache: str = "",
        device: int = 0,
        preprocess_on_device: str = "auto",
        input_size: Sequence[int] = (),
        batch: int = 1,
    ) -> None:
        path = common.model_path_of(model_path)
        trt = import_tensorrt()
        cudart = import_cudart()
        self._cudart = cudart
        cuda_call(cudart.cudaSetDevice(device), "cudaSetDevice")
        if path.suffix.lower() in ENGINE_SUFFIXES:
            stored = read_sidecar(path)
            if stored is not None:
                check_compatible(path, stored[0], *gpu_info(device), str(trt.__version__))
            engine_path, self.metadata = path, (stored[1] if stored else {})
        else:
            built = build_engine(
                path,
                precision=precision,
                batch=batch,
                max_batch=max(batch, max_batch),
                input_size=input_size,
                dla_core=dla_core,
                workspace_mb=workspace_mb,
                calibration_data=calibration_data,
                calibration_frames=calibration_frames,
                cache_dir=engine_cache,
                device=device,
            )
            engine_path, self.metadata = built.path, built.metadata
        self.engine = _load_engine(trt, engine_path, dla_core)
        self.model_path = path
        self.precision = precision
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1:
            raise ModelError(f"engine {engine_path} has {len(inputs)} inputs; a detector needs one image input")
        self.input_name: str = inputs[0]
        _, _, high = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch = int(high[0])
        raw = list(self.engine.get_tensor_shape(self.input_name))
        self.input_shape: tuple[int, ...] = common.resolve_input_shape(
            raw, input_size=input_size, batch=batch, metadata=self.metadata, path=engine_path, name=self.input_name
        )
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.context = self.engine.create_execution_context()
        self.stream = cuda_call(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "cudaStreamCreate")
        self._shape: tuple[int, ...] = ()
        # Device buffers sized for the profile's largest batch; outputs copied back per run.
        self._input_bytes = int(np.prod((self.max_batch, *self.input_shape[1:]))) * self.input_dtype.itemsize
        self._input = cuda_call(cudart.cudaMalloc(self._input_bytes), "cudaMalloc (input)")
        self._outputs: dict[str, tuple[int, np.dtype[Any]]] = {}
        self._bind((self.max_batch, *self.input_shape[1:]))
        for name in self.output_names:
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            size = int(np.prod(list(self.context.get_tensor_shape(name)))) * dtype.itemsize
            pointer = cuda_call(cudart.cudaMalloc(size), f"cudaMalloc (output {name})")
            self._outputs[name] = (pointer, dtype)
            self.context.set_tensor_address(name, int(pointer))
        self._bind(self.input_shape)
        self.output_shapes: list[list[int | str | None]] = [
            list(self.context.get_tensor_shape(n)) for n in self.output_names
        ]
        want_cupy = preprocess_on_device != "off"
        self._cupy = import_cupy(required=preprocess_on_device == "on") if want_cupy else None
        self._cupy_stream = self._cupy.cuda.ExternalStream(int(self.stream)) if self._cupy is not None else None
        if self._cupy is None:
            self.upload = None  # type: ignore[assignment]  # the Detector then pre-processes on the CPU

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_shape[2], self.input_shape[3]

    def class_names(self) -> list[str] | None:
        return common.class_names(self.metadata)

    def upload(self, image: NDArray[np.uint8]) -> Any:
        """Copy the decoded uint8 frame to the device (the one host copy); later CuPy work in this thread is
        enqueued on this backend's stream, so the adapter's pre-processing and ``infer`` are ordered."""
        assert self._cupy is not None and self._cupy_stream is not None
        self._cupy_stream.use()
        return self._cupy.asarray(image)

    def _bind(self, shape: tuple[int, ...]) -> None:
        if shape != self._shape:
            if not self.context.set_input_shape(self.input_name, shape):
                raise ModelError(f"engine input {self.input_name} does not accept shape {list(shape)}")
            self._shape = shape

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]:
        cudart = self._cudart
        shape = tuple(int(d) for d in tensor.shape)
        if len(shape) != 4 or shape[1:] != tuple(self.input_shape[1:]) or not 1 <= shape[0] <= self.max_batch:
            raise ModelError(
                f"input of shape {list(shape)} does not fit engine input {self.input_name} "
                f"[1..{self.max_batch}, {', '.join(map(str, self.input_shape[1:]))}]"
            )
        self._bind(shape)
        if isinstance(tensor, np.ndarray):
            host = np.ascontiguousarray(tensor, dtype=self.input_dtype)
            cuda_call(
                cudart.cudaMemcpyAsync(
                    self._input,
                    host.ctypes.data,
                    host.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                    self.stream,
                ),
                "cudaMemcpyAsync (input)",
            )
            self.context.set_tensor_address(self.input_name, int(self._input))
        else:  # a CuPy tensor built on this stream by upload + preprocess: bind it where it lies
            device_tensor = self._cupy.ascontiguousarray(tensor, dtype=self.input_dtype)
            self.context.set_tensor_address(self.input_name, int(device_tensor.data.ptr))
        if not self.context.execute_async_v3(int(self.stream)):
            raise ModelError(f"TensorRT execution of {self.model_path} failed")
        results = []
        for name in self.output_names:
            pointer, dtype = self._outputs[name]
            host_out = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype)
            cuda_call(
                cudart.cudaMemcpyAsync(
                    host_out.ctypes.data,
                    pointer,
                    host_out.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                    self.stream,
                ),
                f"cudaMemcpyAsync (output {name})",
            )
            results.append(host_out)
        cuda_call(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return [r.astype(np.float32, copy=False) for r in results]

    def __del__(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for pointer, _ in getattr(self, "_outputs", {}).values():
            cudart.cudaFree(pointer)
        if getattr(self, "_input", None) is not None:
            cudart.cudaFree(self._input)
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)


def _load_engine(trt: Any, path: Path, dla_core: int) -> Any:
    """The deserialized engine, shared by every worker's backend (each has its own context and stream)."""
    key = (str(path.resolve()), path.stat().st_mtime_ns, dla_core)
    with _lock:
        if key in _engines:
            return _engines[key][0]
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        if dla_core >= 0:
            runtime.DLA_core = dla_core
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelError(
                f"TensorRT {trt.__version__} cannot deserialize engine {path}: it was most likely built with another "
                "TensorRT version or for another GPU; rebuild it (edge-vision build-engine MODEL.onnx)"
            )
        _engines[key] = (engine, runtime)
        return engine
