"""``edge-vision quantize``: INT8 post-training static quantization for the CPU, and its report.

How (each choice measured on the 2-core AVX-512-VNNI VM with YOLOX-nano, OpenVINO 2026.4; latency from a
1-thread per-layer profile, accuracy as agreement with FP32 on 40 vtest.avi frames). onnxruntime's
``quantize_static`` writes QDQ ONNX, which OpenVINO turns into INT8 kernels and onnxruntime also runs, so one
file serves both backends:

- only ``Conv`` is quantized, inputs but not outputs: quantizing every op (Sigmoid/Mul/Add/Concat) puts
  re-quantization around each SiLU (15.8 ms vs 12.4 ms), and fake-quantizing the conv outputs (the head's
  logits) costs accuracy for no speed;
- depthwise convolutions stay FP32: OpenVINO's INT8 depthwise kernel is not faster (1.8-2.0 ms vs 1.5 ms per
  frame), and their per-channel quantization error, with no bias correction in onnxruntime's quantizer,
  was what broke the output: agreement 0.58 with them quantized, 0.98 without;
- activations unsigned with a zero point: signed symmetric activations ran fine in onnxruntime (0.96) but
  OpenVINO's CPU plugin gave 0.04 agreement with them (the same with NNCF's own signed QDQ model);
- weights signed, symmetric, per output channel; the model is first raised to opset 13, where per-channel
  DequantizeLinear exists: at opset 11 OpenVINO's ONNX frontend rejects the file ("Dequantization scale
  needs to be a scalar");
- NNCF (``nncf.quantize`` on the same ONNX, which adds bias correction) reached a similar INT8 latency but
  brings scikit-learn, networkx, pydot and more (~100 MB); onnxruntime's quantizer needs only ``onnx``.

Result there: INT8 11.2-13.4 ms vs FP32 17.5-17.9 ms (f32) and 13.2-13.6 ms (OpenVINO's bf16 hint); onnxruntime
itself gains nothing from QDQ on this CPU. ``edge-vision quantize`` measures all of it again in one run.

A model exported with onnxruntime *dynamic* quantization (``ConvInteger`` + ``DynamicQuantizeLinear``, such as
the shipped Ultralytics int8 files) is first turned back into FP32 (``dequantize_dynamic``: the int8 weights
dequantized into plain ``Conv``), which is both the FP32 reference and what gets statically quantized.

Mixed precision: ``keep_fp32`` keeps the N convolutions whose quantization adds the most noise in FP32 (their
input activation and weight SQNR on the calibration data, ``sensitivity``); ``ignore_layers`` names nodes.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detection import calibration, common
from edge_vision.core.errors import ConfigError, ModelError

MIN_OPSET = 13
PRECISION_KEY = "edge_vision.precision"


# -- graph surgery --------------------------------------------------------------------------------------------


def is_dynamic_quantized(model: Any) -> bool:
    return any(n.op_type in ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear") for n in model.graph.node)


def dequantize_dynamic(model: Any) -> Any:
    """An ONNX ``ModelProto`` quantized by onnxruntime's ``quantize_dynamic`` as the FP32 model it stands for:
    each ``DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(x_scale * w_scale)`` becomes one ``Conv`` on
    the float input with weights ``(w_q - w_zp) * w_scale``. The weights keep their int8 rounding; only the
    run-time activation quantization (slow on CPU: 55-187 ms for the shipped YOLOv8n/YOLO26n) goes."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    replace: dict[int, Any] = {}
    drop: set[int] = set()
    new_inits = []
    for node in graph.node:
        if node.op_type != "ConvInteger":
            continue
        x_q, w_q, _, w_zp = [*node.input, "", "", "", ""][:4]
        dql = producer.get(x_q)
        casts = consumers.get(node.output[0], [])
        if dql is None or dql.op_type != "DynamicQuantizeLinear" or w_q not in inits or len(casts) != 1:
            raise ModelError(f"ConvInteger {node.name}: not the onnxruntime dynamic-quantization pattern")
        muls = consumers.get(casts[0].output[0], [])
        if casts[0].op_type != "Cast" or len(muls) != 1 or muls[0].op_type != "Mul":
            raise ModelError(f"ConvInteger {node.name}: expected Cast -> Mul(scale) after it")
        mul = muls[0]
        scale_name = mul.input[1] if mul.input[0] == casts[0].output[0] else mul.input[0]
        scale_node = producer.get(scale_name)
        w_scale = next((i for i in (scale_node.input if scale_node else []) if i in inits), None)
        if w_scale is None:
            raise ModelError(f"ConvInteger {node.name}: cannot find its weight scale")
        weight = numpy_helper.to_array(inits[w_q]).astype(np.float32)
        zero = numpy_helper.to_array(inits[w_zp]).astype(np.float32) if w_zp in inits else np.float32(0)
        scale = numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        shape = (-1, 1, 1, 1) if np.ndim(scale) == 1 else ()
        dequantized = (weight - np.reshape(zero, shape) if np.ndim(zero) == 1 else weight - zero) * np.reshape(
            scale, shape
        )
        name = f"{w_q.removesuffix('_quantized')}_dequantized"
        new_inits.append(numpy_helper.from_array(dequantized.astype(np.float32), name))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        conv = helper.make_node("Conv", [dql.input[0], name], [mul.output[0]], name=f"{node.name}_fp32", **attrs)
        replace[id(node)] = conv
        drop.update({id(casts[0]), id(mul)})
    if not replace:
        return model
    nodes = []
    for node in graph.node:
        if id(node) in drop:
            continue
        nodes.append(replace.get(id(node), node))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    _prune(model)
    onnx.checker.check_model(model)
    return model


def _prune(model: Any) -> None:
    """Drop nodes whose outputs nobody reads and initializers no node reads."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = outputs | {i for n in graph.node for i in n.input}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    keep_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)
    del graph.value_info[:]  # shapes of removed tensors; onnxruntime re-infers them


def prepare_fp32(source: Path) -> tuple[Any, list[str]]:
    """The FP32 ONNX model to quantize (dequantized when it was dynamic-int8, raised to opset 13), and notes."""
    import onnx
    from onnx import version_converter

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # DecodeError and friends
        raise ModelError(f"cannot read model {source} as ONNX: {exc}") from exc
    notes = []
    if is_dynamic_quantized(model):
        model = dequantize_dynamic(model)
        notes.append("source was dynamic-int8 (ConvInteger): dequantized to FP32 first")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        metadata = list(model.metadata_props)
        model = version_converter.convert_version(model, MIN_OPSET)
        del model.metadata_props[:]
        model.metadata_props.extend(metadata)
        notes.append(f"opset {opset} -> {MIN_OPSET} (per-channel QDQ)")
    return model, notes


def set_metadata(model: Any, values: Mapping[str, str]) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props.update(values)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


# -- calibration and sensitivity ------------------------------------------------------------------------------


class _Reader:
    """onnxruntime ``CalibrationDataReader`` over prepared tensors."""

    def __init__(self, name: str, tensors: Sequence[NDArray[np.float32]]) -> None:
        self.name = name
        self.tensors = tensors
        self.items: Iterator[NDArray[np.float32]] = iter(tensors)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        item = next(self.items, None)
        return None if item is None else {self.name: item}

    def rewind(self) -> None:
        self.items = iter(self.tensors)


def _fake_quant(values: NDArray[np.float32], axis: int | None, *, unsigned: bool = False) -> NDArray[np.float32]:
    """Int8 fake quantization as the QDQ model does it: symmetric (per channel along ``axis``, else per tensor),
    or ``unsigned`` uint8 with a zero point over [min(x, 0), max(x, 0)]."""
    if unsigned:
        low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
        step = max(high - low, 1e-12) / 255.0
        zero = round(-low / step)
        return ((np.clip(np.rint(values / step) + zero, 0, 255) - zero) * step).astype(np.float32)
    if axis is None:
        scale = np.float32(max(float(np.abs(values).max()), 1e-12) / 127.0)
    else:
        reduce = tuple(i for i in range(values.ndim) if i != axis)
        scale = np.maximum(np.abs(values).max(axis=reduce, keepdims=True), 1e-12) / np.float32(127)
    return (np.clip(np.rint(values / scale), -127, 127) * scale).astype(np.float32)


def sensitivity(
    model: Any, tensors: Sequence[NDArray[np.float32]], *, unsigned: bool = True
) -> list[tuple[str, float]]:
    """Conv nodes of the FP32 ``model``, most sensitive first, with the SQNR (dB) of quantizing their input
    activation (per tensor, its calibration range) and weights (per channel) together: noise powers add, so
    1/SQNR = 1/SQNR_act + 1/SQNR_weight. A first-order measure that needs one FP32 run, not one quantized
    model per layer."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits and _groups(n) == 1]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = sorted({n.input[0] for n in convs} - {o.name for o in probe.graph.output})
    graph_inputs = {i.name for i in probe.graph.input}
    for name in wanted:
        if name not in graph_inputs:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    collected: dict[str, list[NDArray[np.float32]]] = {n: [] for n in wanted}
    for tensor in tensors:
        values = dict(zip(names, session.run(None, {input_name: tensor}), strict=True))
        values[input_name] = tensor
        for name in wanted:
            collected[name].append(values[name])
    scores = []
    for node in convs:
        activations = np.concatenate([a.reshape(-1) for a in collected[node.input[0]]]).astype(np.float32)
        weight = inits[node.input[1]].astype(np.float32)
        quantized = _fake_quant(activations, None, unsigned=unsigned)
        noise = _nsr(activations, quantized) + _nsr(weight, _fake_quant(weight, 0))
        scores.append((node.name, -10.0 * math.log10(max(noise, 1e-30))))
    return sorted(scores, key=lambda item: item[1])


def _groups(node: Any) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "group"), 1)


def _nsr(signal: NDArray[np.float32], quantized: NDArray[np.float32]) -> float:
    power = float(np.square(signal, dtype=np.float64).sum())
    return float(np.square(signal - quantized, dtype=np.float64).sum()) / max(power, 1e-30)


# -- quantization ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class QuantizeResult:
    output: Path
    fp32: Path
    notes: list[str] = field(default_factory=list)
    kept_fp32: list[str] = field(default_factory=list)
    sensitivity: list[tuple[str, float]] = field(default_factory=list)


def quantize(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    calibration_tensors: Sequence[NDArray[np.float32]],
    *,
    keep_fp32: int = 0,
    ignore_layers: Sequence[str] = (),
    op_types: Sequence[str] = ("Conv",),
    method: str = "minmax",
    activations: str = "uint8",
    fp32_output: str | os.PathLike[str] | None = None,
    reduce_range: bool = False,
    quantize_depthwise: bool = False,
) -> QuantizeResult:
    """Write the INT8 QDQ model of ``source`` to ``output`` (and the FP32 reference it was made from to
    ``fp32_output``, default ``<output stem>.fp32.onnx``, when that differs from ``source``)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    source_path = common.model_path_of(source)
    out = Path(output)
    if not calibration_tensors:
        raise ConfigError("quantize: no calibration frames")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}
    methods["percentile"] = CalibrationMethod.Percentile
    if method not in methods:
        raise ConfigError(f"quantize: --method must be one of {sorted(methods)}, got {method!r}")
    if activations not in ("int8", "uint8"):
        raise ConfigError(f"quantize: --activations must be int8 or uint8, got {activations!r}")
    model, notes = prepare_fp32(source_path)
    node_names = {n.name for n in model.graph.node}
    unknown = [n for n in ignore_layers if n not in node_names]
    if unknown:
        raise ConfigError(f"quantize: --ignore-layers names nodes the model does not have: {unknown[:5]}")
    result = QuantizeResult(out, source_path, notes)
    excluded = list(ignore_layers)
    if not quantize_depthwise:
        excluded += [n.name for n in model.graph.node if n.op_type == "Conv" and _groups(n) > 1]
    if keep_fp32 > 0:
        result.sensitivity = sensitivity(model, calibration_tensors, unsigned=activations == "uint8")
        result.kept_fp32 = [name for name, _ in result.sensitivity[:keep_fp32]]
        excluded += [n for n in result.kept_fp32 if n not in excluded]
    out.parent.mkdir(parents=True, exist_ok=True)
    if notes:
        result.fp32 = Path(fp32_output) if fp32_output else out.with_name(f"{out.stem}.fp32.onnx")
        onnx.save(model, str(result.fp32))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(base))
        input_name = next(i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer})
        symmetric = activations == "int8"
        try:
            quantize_static(
                str(base),
                str(Path(tmp) / "int8.onnx"),
                _Reader(input_name, calibration_tensors),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types) or None,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded or None,
                calibrate_method=methods[method],
                extra_options={
                    "ActivationSymmetric": symmetric,
                    "WeightSymmetric": True,
                    "OpTypesToExcludeOutputQuantization": list(op_types),
                },
            )
        except Exception as exc:  # onnxruntime raises plain exceptions from its graph passes
            raise ModelError(f"onnxruntime could not quantize {source_path}: {exc}") from exc
        quantized = onnx.load(str(Path(tmp) / "int8.onnx"))
    set_metadata(quantized, {p.key: p.value for p in model.metadata_props})
    set_metadata(
        quantized,
        {
            PRECISION_KEY: "int8",
            "edge_vision.quantized_from": common.file_sha256(source_path)[:16],
            "edge_vision.kept_fp32": ",".join(n for n in excluded if n in set(ignore_layers) | set(result.kept_fp32)),
        },
    )
    onnx.save(quantized, str(out))
    return result


# -- measuring ------------------------------------------------------------------------------------------------


def interleaved_latency(
    runs: Mapping[str, Callable[[], Any]], *, rounds: int = 8, per_round: int = 15, warmup: int = 5
) -> dict[str, list[float]]:
    """Milliseconds per call of each function, measured in interleaved rounds (A B C A B C...) so load from
    other jobs on a shared machine hits every candidate alike: the ratios within one run are what count."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return samples


def parallel_fps(calls: Sequence[Callable[[], Any]], frames: int) -> float:
    """Frames per second of ``calls`` (one per worker) run in parallel threads, ``frames`` in all."""
    per_worker = max(1, frames // len(calls))

    def work(call: Callable[[], Any]) -> None:
        for _ in range(per_worker):
            call()

    threads = [threading.Thread(target=work, args=(c,)) for c in calls]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_worker * len(calls) / (time.perf_counter() - start)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": float(np.percentile(ordered, 99)),
        "mean_ms": statistics.fmean(ordered),
    }


def eval_frames(source: str, count: int, calibration_count: int) -> Iterator[NDArray[np.uint8]]:
    """Frames to evaluate on, disjoint from the calibration frames where the source allows: the frames half way
    between the calibration samples of a video (or of a large image folder)."""
    frames = list(calibration.frames(source, count + calibration_count))
    if len(frames) >= count + calibration_count:
        yield from frames[1::2][:count]
    else:
        yield from frames[:count]


# -- the command ----------------------------------------------------------------------------------------------

BACKENDS = ("onnxruntime", "openvino")


def _detector(model: Path, backend: str, labels: str | None, confidence: float) -> Any:
    from edge_vision.core.detection.detector import Detector

    return Detector.from_config(model, backend=backend, labels=labels, confidence=confidence)


def accuracy(
    fp32: Path,
    int8: Path,
    *,
    backend: str,
    labels: str | None,
    frames: Sequence[NDArray[np.uint8]],
    truths: Sequence[Any] | None,
    confidence: float,
) -> dict[str, float]:
    """mAP50 of FP32 and INT8 against ``truths`` when given, and the agreement of INT8 with FP32 (mAP50 of the
    INT8 detections scored against the FP32 detections at ``confidence`` as ground truth)."""
    from edge_vision.core.detection import metrics

    low = 0.001  # the usual mAP evaluation threshold: the whole precision-recall curve
    reference = _detector(fp32, backend, labels, confidence)
    fp32_low, int8_low = _detector(fp32, backend, labels, low), _detector(int8, backend, labels, low)
    result: dict[str, float] = {}
    references = [metrics.as_truth(reference.detect(f)) for f in frames]
    result["agreement_map50"] = metrics.map50([int8_low.detect(f) for f in frames], references)
    if truths is not None:
        result["fp32_map50"] = metrics.map50([fp32_low.detect(f) for f in frames], truths)
        result["int8_map50"] = metrics.map50([int8_low.detect(f) for f in frames], truths)
        result["map50_change"] = result["int8_map50"] - result["fp32_map50"]
    return result


def latency(models: Mapping[str, Path], backends: Sequence[str], shape: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Per (model, backend): latency of one inference at the backend's defaults, interleaved in one run."""
    from edge_vision.core import plugins

    tensor = np.random.default_rng(0).random(tuple(shape), dtype=np.float32)
    runs: dict[str, Callable[[], Any]] = {}
    for label, path in models.items():
        for backend in backends:
            engine = plugins.build("backends", backend, {}, where="detector", model_path=path)
            runs[f"{label} {backend}"] = partial(engine.infer, tensor)
    samples = interleaved_latency(runs)
    return {name: summarize(values) for name, values in samples.items()}


def run(
    model: str,
    *,
    data: str,
    output: str | None,
    frames: int = 128,
    eval_count: int = 100,
    labelled: str | None = None,
    labels: str | None = None,
    keep_fp32: int = 0,
    ignore_layers: Sequence[str] = (),
    method: str = "minmax",
    activations: str = "uint8",
    op_types: Sequence[str] = ("Conv",),
    backends: Sequence[str] = BACKENDS,
    confidence: float = 0.25,
    report_path: str | None = None,
) -> dict[str, Any]:
    """Quantize ``model`` on ``data`` and measure: what ``edge-vision quantize`` prints and writes."""
    import json

    from edge_vision.core.detection import metrics

    source = common.model_path_of(model)
    out = Path(output) if output else source.with_name(f"{source.stem}.int8.onnx")
    if out.resolve() == source.resolve():
        raise ConfigError(f"quantize: the output {out} would overwrite the model")
    # The FP32 reference first (dequantized / opset-raised where needed), for the adapter and the tensors.
    fp32_model, _ = prepare_fp32(source)
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / f"{source.stem}.fp32.onnx"
        import onnx

        onnx.save(fp32_model, str(reference))
        probe = _detector(reference, "onnxruntime", labels, confidence)
        shape = probe.backend.input_shape
        start = time.perf_counter()
        tensors = calibration.tensors(data, probe.adapter.preprocess, frames)
        result = quantize(
            source,
            out,
            tensors,
            keep_fp32=keep_fp32,
            ignore_layers=ignore_layers,
            op_types=op_types,
            method=method,
            activations=activations,
        )
        seconds = time.perf_counter() - start
    fp32 = result.fp32
    truths = None
    if labelled:
        items = metrics.load_labelled(labelled, probe.labels)
        import cv2

        eval_images: list[NDArray[np.uint8]] = [np.asarray(cv2.imread(str(p))) for p, _ in items]
        truths = [t for _, t in items]
    else:
        eval_images = list(eval_frames(data, eval_count, frames))
    models = {"fp32": fp32, "int8": out}
    if fp32 != source:
        models = {"source": source, **models}
    report: dict[str, Any] = {
        "model": str(source),
        "int8": str(out),
        "fp32_reference": str(fp32),
        "calibration": {"data": data, "frames": len(tensors), "method": method, "seconds": seconds},
        "activations": activations,
        "op_types": list(op_types),
        "notes": result.notes,
        "kept_fp32": result.kept_fp32,
        "sensitivity_db": [{"node": n, "sqnr_db": round(v, 2)} for n, v in result.sensitivity[: max(keep_fp32, 10)]],
        "latency": latency(models, backends, shape),
        "accuracy": {
            backend: accuracy(
                fp32,
                out,
                backend=backend,
                labels=labels,
                frames=eval_images,
                truths=truths,
                confidence=confidence,
            )
            for backend in backends
        },
        "evaluated_on": labelled or f"{len(eval_images)} frames of {data} (not the calibration frames)",
    }
    for backend in backends:
        base = report["latency"].get(f"fp32 {backend}", {}).get("p50_ms")
        quant = report["latency"].get(f"int8 {backend}", {}).get("p50_ms")
        if base and quant:
            report["accuracy"][backend]["speedup_p50"] = base / quant
    print(format_report(report))
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {report_path}")
    return report


def format_report(report: Mapping[str, Any]) -> str:
    lines = [f"INT8 model: {report['int8']}  (from {report['model']})"]
    lines += [f"  note: {note}" for note in report["notes"]]
    if report["kept_fp32"]:
        lines.append(f"  kept in FP32 (most sensitive first): {', '.join(report['kept_fp32'])}")
    cal = report["calibration"]
    lines.append(f"  calibrated on {cal['frames']} frames of {cal['data']} ({cal['method']}) in {cal['seconds']:.1f} s")
    lines.append("")
    lines.append(f"{'latency (same run, interleaved)':<34} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in report["latency"].items():
        lines.append(f"{name:<34} {values['p50_ms']:8.2f} {values['p99_ms']:8.2f}")
    lines.append("")
    lines.append(f"accuracy on {report['evaluated_on']}")
    for backend, values in report["accuracy"].items():
        parts = [f"{key} {value:.3f}" for key, value in values.items()]
        lines.append(f"  {backend}: {', '.join(parts)}")
    return "\n".join(lines)
