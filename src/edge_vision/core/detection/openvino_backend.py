"""OpenVINO inference backend: CPU, integrated GPU or NPU (or AUTO), latency / throughput hints, streams.

Parallel mode for ``detector.workers``: every worker's backend shares ONE compiled model (same file, device and
settings) and owns one infer request; the workers call ``infer`` from their own threads, OpenVINO releases the
GIL and runs the requests on its streams. That is what ``AsyncInferQueue`` does (N requests over the compiled
model's streams), with the pipeline's ordered worker threads in place of its callback thread: ``hint:
throughput`` with 2 workers gives 2 single-thread streams on 2 cores.

Precision: ``f32`` by default, so detections match onnxruntime's (IoU >= 0.99, scores within 0.01). On this
AVX-512-BF16 CPU OpenVINO's own default is bf16, which is what issue #8's 5.9-6.5 ms figures were: faster
(1.0-1.5x onnxruntime's best fps in bench runs) but not the same detections (over 13 frames: YOLOX-nano
scores off by up to 0.063, a box at IoU 0.87, 3 frames with a different count). In f32 OpenVINO is no faster
than onnxruntime's MLAS on this CPU (0.86-1.08x); its gain here is INT8 (``edge-vision quantize``).
"""

from __future__ import annotations

import importlib
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detection import common
from edge_vision.core.errors import ConfigError, ModelError

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
# ``f32`` is the default: see the module doc for what bf16 changes.
PRECISIONS = {"f32": "f32", "bf16": "bf16", "f16": "f16", "auto": ""}

_lock = threading.Lock()
_core: list[Any] = []
# Compiled models by (file, mtime, device, shape, properties), held only while some backend uses them.
_compiled: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()


def _openvino() -> Any:
    try:
        return importlib.import_module("openvino")
    except ImportError as exc:
        raise ModelError("detector.backend openvino needs the Python package openvino (pip install openvino)") from exc


def core() -> Any:
    """One ``openvino.Core`` per process (it owns the plugins and their thread pools)."""
    with _lock:
        if not _core:
            _core.append(_openvino().Core())
        return _core[0]


def metadata_of(model: Any) -> dict[str, str]:
    """ONNX ``metadata_props`` as the ONNX frontend keeps them (rt_info ``framework``), or an IR's
    ``model_info`` section."""
    out: dict[str, str] = {}
    info = model.get_rt_info()
    for section in ("framework", "model_info"):
        if section in info:
            for key in list(info[section].keys()) if hasattr(info[section], "keys") else []:
                try:
                    out[str(key)] = model.get_rt_info([section, key]).astype(str)
                except Exception:  # a non-string entry: not metadata an adapter reads
                    continue
    return out


class OpenVinoBackend:
    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("device", "CPU", "OpenVINO device: CPU, GPU (integrated), NPU, AUTO, or e.g. GPU.1"),
        Param(
            "hint",
            "latency",
            "performance hint: latency (one stream using every core) or throughput (streams for detector.workers)",
            choices=tuple(HINTS),
        ),
        Param("streams", 0, "inference streams (0 = what the hint picks)", min=0, max=64),
        Param("threads", 0, "inference threads in all (0 = every core)", min=0, max=256),
        Param(
            "precision",
            "f32",
            "inference precision hint (auto = the device's default: bf16 on AVX-512-BF16/AMX CPUs, f16 on GPU)",
            choices=tuple(PRECISIONS),
        ),
        Param("cache_dir", "", "OpenVINO model cache folder (GPU/NPU compile once; empty = off)"),
        Param("config", [""], "further OpenVINO properties as KEY=value"),
        *common.INPUT_PARAMS,
    )

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        device: str = "CPU",
        hint: str = "latency",
        streams: int = 0,
        threads: int = 0,
        precision: str = "f32",
        cache_dir: str = "",
        config: Sequence[str] = (),
        input_size: Sequence[int] = (),
        batch: int = 1,
    ) -> None:
        path = model_path_for_ir(common.model_path_of(model_path))
        ov_core = core()
        available = list(ov_core.available_devices)
        base = device.split(".")[0].split(":")[0].upper()
        if base not in ("AUTO", "MULTI", "HETERO") and not any(d.startswith(device.upper()) for d in available):
            raise ConfigError(f"detector.device {device!r} is not available; OpenVINO sees {available}")
        try:
            model = ov_core.read_model(str(path))
        except Exception as exc:  # openvino raises RuntimeError with the frontend's report
            raise ModelError(f"cannot load model {path} with openvino: {_first_lines(exc)}") from exc
        if len(model.inputs) != 1:
            raise ModelError(f"model {path} has {len(model.inputs)} inputs; a detector model needs exactly one image")
        port = model.inputs[0]
        self.input_name: str = port.any_name
        self.metadata: Mapping[str, str] = metadata_of(model)
        raw_shape = [d.get_length() if d.is_static else -1 for d in port.partial_shape]
        self.input_shape: tuple[int, ...] = common.resolve_input_shape(
            raw_shape, input_size=input_size, batch=batch, metadata=self.metadata, path=path, name=self.input_name
        )
        if list(self.input_shape) != raw_shape:
            # Static shapes compile to faster kernels than dynamic ones: fix the resolved size.
            try:
                model.reshape({port.any_name: list(self.input_shape)})
            except Exception as exc:
                raise ModelError(
                    f"model {path} cannot run at input {list(self.input_shape)}: {_first_lines(exc)} "
                    "(check detector.input_size)"
                ) from exc
        properties: dict[str, Any] = {"PERFORMANCE_HINT": HINTS[hint]}
        if streams:
            properties["NUM_STREAMS"] = streams
        if threads:
            properties["INFERENCE_NUM_THREADS"] = threads
        if PRECISIONS[precision]:
            properties["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        if cache_dir:
            properties["CACHE_DIR"] = cache_dir
        properties.update(common.parse_options(config, "detector.config"))
        key = (str(path.resolve()), path.stat().st_mtime_ns, device, self.input_shape, repr(sorted(properties.items())))
        with _lock:
            compiled = _compiled.get(key)
        if compiled is None:
            try:
                compiled = ov_core.compile_model(model, device, properties)
            except Exception as exc:
                raise ModelError(f"openvino cannot compile {path} for {device}: {_first_lines(exc)}") from exc
            with _lock:
                compiled = _compiled.setdefault(key, compiled)  # another worker may have won the race
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.model_path = path
        self.device = device
        self.output_shapes: list[list[int | str | None]] = [
            [d.get_length() if d.is_static else None for d in o.partial_shape] for o in compiled.outputs
        ]
        self.precision = _precision(compiled, self.metadata)
        self.streams = int(compiled.get_property("NUM_STREAMS"))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_shape[2], self.input_shape[3]

    def class_names(self) -> list[str] | None:
        return common.class_names(self.metadata)

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]:
        # share_inputs: no copy of the tensor into the request; share_outputs=False: the outputs are ours to
        # keep after the next infer on this request.
        results = self.request.infer({0: tensor}, share_inputs=True)
        return [results[i] for i in range(len(self.compiled.outputs))]


def _precision(compiled: Any, metadata: Mapping[str, str]) -> str:
    if metadata.get("edge_vision.precision"):
        return metadata["edge_vision.precision"]
    try:
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()  # "<Type: 'bfloat16'>"
    except Exception:  # a device without the property
        hint = ""
    if "bf16" in hint or "bfloat16" in hint:
        return "bf16"
    return "fp16" if "f16" in hint or "float16" in hint else "fp32"


def _first_lines(exc: BaseException, lines: int = 6) -> str:
    return " ".join(str(exc).strip().splitlines()[:lines])


def model_path_for_ir(path: Path) -> Path:
    """An IR (.xml) needs its .bin beside it; name it when it is missing."""
    if path.suffix == ".xml" and not path.with_suffix(".bin").is_file():
        raise ModelError(f"OpenVINO IR {path} has no weights file {path.with_suffix('.bin')}")
    return path
