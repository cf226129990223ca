"""OpenVINO inference backend: CPU, integrated GPU or NPU (or AUTO), latency / throughput hints, streams.

Parallel mode for ``detector.workers``: every worker's backend shares ONE compiled model (same file, device and
settings) and owns one infer request; the workers call ``infer`` from their own threads, OpenVINO releases the
GIL and runs the requests on its streams. That is what ``AsyncInferQueue`` does (N requests over the compiled
model's streams), with the pipeline's ordered worker threads in place of its callback thread: ``hint:
throughput`` with 2 workers gives 2 single-thread streams on 2 cores. Measured against an ``AsyncInferQueue``
of 2 on the same compiled model: 0.99x (same); the latency hint (one request on 2 threads) 0.83x.

Exact rewrites at load time (``detector.rewrite``, on by default; outputs bit-identical to the graph as read,
checked on real frames in test_backends.py). Found with the CPU plugin's per-layer profile on the 2-core
AVX-512 VM, YOLOX-nano, OpenVINO 2026.4, one thread:

- YOLOX's Focus stem (4 stride-2 ``Slice`` pairs + ``Concat`` on the input) ran on the plugin's reference
  StridedSlice kernel, 1.6-1.8 ms of ~17 ms, plus a 0.3 ms reorder into the first convolution's layout. Any
  Concat of stride-s Slices of one tensor that together take every element once (a space-to-depth in some
  channel order) becomes Reshape -> Transpose -> Reshape in the Concat's order: 0.3 ms. A one-hot stride-2
  Convolution doing the same (also exact, for finite inputs) was 1-1.5 % faster: not worth the less obvious
  form; neither was an NHWC gather (slower for INT8).
- The output ``Transpose`` of the concatenated, flattened head maps (0.27 ms, plus reorders of each map out of
  the convolutions' NHWC layout) becomes a Transpose per map into NHWC, which the plugin folds into its
  layout, and a Concat it does in place.

Gain, interleaved A/B while other jobs loaded the VM (load average 5-9), as process CPU time per frame (what
that load moves least): one thread, 20 rounds, FP32 17.7 -> 16.4 ms (1.08x), INT8 11.8 -> 10.4 ms (1.14x);
two streams, 16 rounds, FP32 1.09x (per-round range 1.00-1.16), INT8 1.15x (1.05-1.21). onnxruntime fuses the
same stem into SpaceToDepth on its own. Also tried: u8 NHWC input with the layout change and conversion done
in-graph by ``PrePostProcessor`` (identical outputs, 0.99x: the plugin's own input reorder costs the same).

Precision: ``f32`` by default, so detections match onnxruntime's (IoU >= 0.99, scores within 0.01). On this
AVX-512-BF16 CPU OpenVINO's own default is bf16, which is what issue #8's 5.9-6.5 ms figures were: faster
(1.0-1.5x onnxruntime's best fps in bench runs) but not the same detections (over 87 frames: YOLOX-nano
scores off by up to 0.087, boxes at IoU 0.84, 18 frames with a different count). bf16 on part of the graph
does not help: with only the first convolution in bf16 (the rest kept f32 with rt_info ``precise``) scores
still moved by up to 0.033 (2 frames with a different count); with bf16 from the 20th convolution on, 0.027.
In f32 OpenVINO stays behind onnxruntime's MLAS on this CPU, rewrites included: 0.90x its CPU time per frame
at 2 workers (per-round range 0.82-0.96; one thread on a quiet moment 15.6-16.1 ms vs 14.3-14.6 ms). Both run
YOLOX-nano's 0.52 GMAC of convolutions near this core's f32 rate (the best layers reach ~50 GMAC/s, so ~10.4
ms is the floor of the convolutions alone), so no exact graph form reaches 1.2x in f32; ``ENABLE_CPU_PINNING``
and ``CPU_DENORMALS_OPTIMIZATION`` moved one-thread latency by ~1 %, less than the noise. OpenVINO's gain here
is INT8 (``edge-vision quantize``): 1.41x onnxruntime's FP32 CPU time per frame (1.34-1.55), rewrites included.
"""

from __future__ import annotations

import importlib
import itertools
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
# Compiled models by (file, mtime, device, shape, rewrite, properties), held only while some backend uses them.
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
        Param(
            "rewrite",
            True,
            "exact load-time rewrites of graph patterns the CPU plugin runs slowly (YOLOX Focus stem of strided "
            "Slices, the output Transpose of flattened head maps); outputs are bit-identical; false = as read",
        ),
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
        rewrite: bool = True,
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
        # After the reshape: the rewrites need static shapes.
        self.rewrites: dict[str, int] = rewrite_model(model) if rewrite else {}
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
        key = (
            str(path.resolve()),
            path.stat().st_mtime_ns,
            device,
            self.input_shape,
            rewrite,
            repr(sorted(properties.items())),
        )
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


# -- exact graph rewrites (see the module doc for what each one saves) ----------------------------------------


def rewrite_model(model: Any) -> dict[str, int]:
    """Apply the exact rewrites to an ``openvino.Model`` in place; how many places each one changed."""
    done = {"space_to_depth": rewrite_space_to_depth(model), "flatten_transpose": rewrite_flatten_transpose(model)}
    if any(done.values()):
        model.validate_nodes_and_infer_types()
    return done


def _constant(output: Any) -> NDArray[np.int64] | None:
    node = output.get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.asarray(node.get_data()).astype(np.int64).reshape(-1)


def _static_shape(output: Any) -> list[int] | None:
    shape = output.get_partial_shape()
    return [int(d) for d in shape.to_shape()] if shape.is_static else None


def _stepped_slice(node: Any) -> tuple[Any, dict[int, tuple[int, int]]] | None:
    """A ``Slice`` (v8, what the ONNX frontend makes) or ``StridedSlice`` (v1, Model Optimizer IRs) that takes
    every ``step``-th element from ``start`` < ``step`` to the end of each axis it slices: (its input,
    {axis: (start, step)} for the axes it does not take whole), else None."""
    shape = _static_shape(node.input_value(0))
    kind = node.get_type_name()
    if shape is None or kind not in ("Slice", "StridedSlice"):
        return None
    rank = len(shape)
    start, stop = _constant(node.input_value(1)), _constant(node.input_value(2))
    step = _constant(node.input_value(3)) if node.get_input_size() > 3 else None
    if start is None or stop is None or (step is None and (kind == "Slice" or node.get_input_size() > 3)):
        return None
    step = np.ones_like(start) if step is None else step
    if kind == "Slice":
        axes = _constant(node.input_value(4)) if node.get_input_size() > 4 else np.arange(len(start))
        if axes is None:
            return None
    else:
        attributes = node.get_attributes()
        if any(any(attributes.get(m, ())) for m in ("new_axis_mask", "shrink_axis_mask", "ellipsis_mask")):
            return None
        begin_mask = [*attributes.get("begin_mask", ()), *[0] * rank]
        end_mask = [*attributes.get("end_mask", ()), *[0] * rank]
        start = np.array([0 if begin_mask[i] else v for i, v in enumerate(start)], np.int64)
        stop = np.array([np.iinfo(np.int64).max if end_mask[i] else v for i, v in enumerate(stop)], np.int64)
        axes = np.arange(len(start))
    taken: dict[int, tuple[int, int]] = {}
    for axis, first, end, stride in zip(axes.tolist(), start.tolist(), stop.tolist(), step.tolist(), strict=True):
        axis %= rank
        dim = shape[axis]
        first = first + dim if first < 0 else first
        if stride <= 0 or not 0 <= first < stride or end < dim or axis in taken:
            return None
        if stride > 1 and dim % stride:
            return None
        if stride > 1 or first:
            taken[axis] = (first, stride)
    return node.input_value(0), taken


def _space_to_depth_branches(concat: Any) -> tuple[Any, list[dict[int, tuple[int, int]]]] | None:
    """The one tensor a Concat's inputs all slice (through chains of stepped slices) and each input's
    {axis: (offset, step)}; None when the Concat is not that pattern."""
    source = None
    branches = []
    for value in concat.input_values():
        node = value.get_node()
        taken: dict[int, tuple[int, int]] = {}
        origin = None
        while node.get_type_name() in ("Slice", "StridedSlice"):
            found = _stepped_slice(node)
            if found is None or set(found[1]) & set(taken):
                return None
            origin, more = found
            taken.update(more)
            node = origin.get_node()
        if origin is None or not taken:
            return None
        if source is None:
            source = origin
        elif origin.get_node() is not source.get_node() or origin.get_index() != source.get_index():
            return None
        branches.append(taken)
    return (source, branches) if source is not None and len(branches) > 1 else None


def rewrite_space_to_depth(model: Any) -> int:
    """YOLOX's Focus stem, ``Concat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2])``
    on the channel axis, and any Concat of stride-s Slices of one tensor that take every element once, in an
    order that is row-major over the offsets of the sliced axes: ``Reshape`` (split each sliced axis into
    (outer, step)) -> ``Transpose`` (the offsets ahead of the Concat axis, in the Concat's order) ->
    ``Reshape``. Only data moves, so the result is bit-identical. Returns how many Concats were rewritten."""
    ops = importlib.import_module("openvino.opset13")
    count = 0
    for concat in model.get_ordered_ops():
        if concat.get_type_name() != "Concat" or _static_shape(concat.output(0)) is None:
            continue
        found = _space_to_depth_branches(concat)
        if found is None:
            continue
        source, branches = found
        shape = _static_shape(source)
        if shape is None:
            continue
        rank, axis = len(shape), concat.get_axis() % len(shape)
        sliced = sorted(branches[0])
        steps = [branches[0][a][1] for a in sliced]
        if axis in sliced or min(sliced) < axis:
            continue
        if any(sorted(b) != sliced or [b[a][1] for a in sliced] != steps for b in branches):
            continue
        offsets = [tuple(b[a][0] for a in sliced) for b in branches]
        order = next(
            (
                perm
                for perm in itertools.permutations(range(len(sliced)))
                if offsets
                == [
                    tuple(t[perm.index(i)] for i in range(len(sliced)))
                    for t in itertools.product(*(range(steps[i]) for i in perm))
                ]
            ),
            None,
        )
        if order is None:  # not every offset once, or an order no transpose gives
            continue
        split: list[int] = []
        position: dict[int, int] = {}
        for i, dim in enumerate(shape):
            position[i] = len(split)
            split += [dim // steps[sliced.index(i)], steps[sliced.index(i)]] if i in sliced else [dim]
        permutation = [position[i] for i in range(axis)]
        permutation += [position[sliced[i]] + 1 for i in order]
        permutation += [position[i] for i in range(axis, rank)]
        target = _static_shape(concat.output(0))
        grouped = ops.reshape(source, ops.constant(np.array(split, np.int64)), special_zero=False)
        moved = ops.transpose(grouped, ops.constant(np.array(permutation, np.int64)))
        merged = ops.reshape(moved, ops.constant(np.array(target, np.int64)), special_zero=False)
        _replace(concat, merged)
        count += 1
    return count


def rewrite_flatten_transpose(model: Any) -> int:
    """``Transpose[0, 2, 1](Concat_axis2(Reshape(x_i: [N, C, H, W] -> [N, C, H*W])))`` (YOLOX's output: the
    per-level head maps flattened, concatenated, then anchors first) -> ``Concat_axis1(Reshape(Transpose[0, 2,
    3, 1](x_i) -> [N, H*W, C]))``: the same elements in the same order. Returns how many were rewritten."""
    ops = importlib.import_module("openvino.opset13")
    count = 0
    for transpose in model.get_ordered_ops():
        if transpose.get_type_name() != "Transpose":
            continue
        permutation = _constant(transpose.input_value(1))
        concat = transpose.input_value(0).get_node()
        if permutation is None or permutation.tolist() != [0, 2, 1] or concat.get_type_name() != "Concat":
            continue
        if concat.get_axis() % 3 != 2:
            continue
        maps: list[tuple[Any, list[int]]] = []
        for value in concat.input_values():
            reshape = value.get_node()
            shape = _static_shape(reshape.input_value(0)) if reshape.get_type_name() == "Reshape" else None
            if (
                shape is None
                or len(shape) != 4
                or _static_shape(reshape.output(0)) != [*shape[:2], shape[2] * shape[3]]
            ):
                maps = []
                break
            maps.append((reshape.input_value(0), shape))
        if not maps:
            continue
        parts = [
            ops.reshape(
                ops.transpose(value, ops.constant(np.array([0, 2, 3, 1], np.int64))),
                ops.constant(np.array([n, h * w, c], np.int64)),
                special_zero=False,
            )
            for value, (n, c, h, w) in maps
        ]
        _replace(transpose, ops.concat(parts, 1))
        count += 1
    return count


def _replace(old: Any, new: Any) -> None:
    """``new`` in place of ``old``, under its name and with its output tensor names (the model's output)."""
    names = old.output(0).get_names()
    new.set_friendly_name(old.get_friendly_name())
    old.output(0).replace(new.output(0))
    if names:
        new.output(0).get_tensor().set_names(names)
