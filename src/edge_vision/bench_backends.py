"""The backend table of ``edge-vision bench``: for each model, backend and setting, in one run: precision,
batch, latency p50/p99 of one inference, model-only fps at the setting's parallelism, and the composed
pipeline's fps with that detector (the core runtime ``Pipeline``, as ``bench.measure_composed``).

Each backend is measured at the settings that are its best on a small CPU (picked from measurements, not
assumed): onnxruntime as one session with its default threads, and as ``workers`` single-thread sessions in
parallel (the pipeline's default); OpenVINO with the latency hint (one request using every core) and with the
throughput hint (one stream and one request per worker), that one also with ``rewrite: false`` (the graph as
read) so the load-time rewrites' gain shows in the same run. Ratios are taken between rows of the same run:
latencies are measured in interleaved rounds, model-only fps as the median of interleaved rounds (short slots,
the order reversed every other round so a load ramp falls on every row alike), and each ratio also as the
median and range of its per-round ratios. CPU time per frame (the process's, over each slot) is given too, as
the figure other jobs' load moves least: on the shared 2-core VM at load average 6-8, one-thread OpenVINO /
onnxruntime wall-time ratios spread 0.76-1.26 over 20 rounds where the CPU-time ratios of the same rounds
spread 0.86-0.93.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_vision.core import assets, config, plugins
from edge_vision.core.detection.quantize import interleaved_latency, parallel_fps
from edge_vision.core.runtime.build import build_detector


@dataclass(slots=True)
class Setting:
    backend: str
    name: str
    params: dict[str, Any]
    workers: int
    # False: shown for comparison, never a backend's "best" (other outputs, or the rewrites switched off).
    candidate: bool = True


@dataclass(slots=True)
class Row:
    model: str
    backend: str
    setting: str
    precision: str
    batch: int
    workers: int
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    fps: float = 0.0
    composed_fps: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    fps_rounds: list[float] = field(default_factory=list)
    cpu_ms_per_frame: float = 0.0
    cpu_rounds: list[float] = field(default_factory=list)
    candidate: bool = True


def settings(cores: int | None = None) -> list[Setting]:
    """The candidate settings of every installed CPU backend (TensorRT where it imports)."""
    workers = max(1, min(2, cores or os.cpu_count() or 1))
    candidates = [
        Setting("onnxruntime", "1 session, default threads", {"intra_op_threads": 0}, 1),
        Setting("onnxruntime", f"{workers} sessions x 1 thread", {"intra_op_threads": 1}, workers),
        Setting("openvino", "latency hint", {"hint": "latency"}, 1),
        Setting("openvino", f"throughput hint, {workers} requests", {"hint": "throughput"}, workers),
        # The same with the load-time rewrites off: their gain, in the same run.
        Setting(
            "openvino", f"throughput, {workers} req., as read", {"hint": "throughput", "rewrite": False}, workers, False
        ),
        # Not identical outputs (scores move by up to ~0.09): a row of its own, outside the comparisons.
        Setting(
            "openvino", f"throughput, {workers} req., bf16", {"hint": "throughput", "precision": "bf16"}, workers, False
        ),
    ]
    available = set(plugins.available("backends"))
    chosen = [s for s in candidates if s.backend in available]
    if "tensorrt" in available and _has_tensorrt():
        chosen.append(Setting("tensorrt", "fp16 engine", {"precision": "fp16"}, 1))
    return chosen


def _has_tensorrt() -> bool:
    try:
        import importlib

        importlib.import_module("tensorrt")
    except ImportError:
        return False
    return True


def detector_section(base: dict[str, Any], model: str, setting: Setting) -> dict[str, Any]:
    """``base`` (a resolved detector section) with another model, backend, its parameters and workers."""
    keep = {k: v for k, v in base.items() if k in config.SCHEMA["detector"]}
    # A model without embedded names (YOLOX, its INT8 copy) gets the bundled COCO names: labels do not change
    # timings, and every model benchmarked here is a COCO model unless detector.labels says otherwise.
    labels = base["labels"] or str(assets.find(assets.DEFAULT_LABELS))
    keep.update(model=model, backend=setting.backend, workers=setting.workers, labels=labels)
    keep.update(setting.params)
    return config.resolve("detector", keep)


def measure(
    sections: dict[str, dict[str, Any]],
    models: Sequence[str],
    tensors: Sequence[np.ndarray],
    *,
    frames: int,
    rounds: int = 8,
    composed: bool = True,
) -> dict[str, Any]:
    """Rows for every model x setting, and the ratios the issue's bar reads."""
    from edge_vision.bench import measure_composed

    rows: list[Row] = []
    engines: dict[int, list[Any]] = {}
    for model in models:
        for setting in settings():
            section = detector_section(sections["detector"], model, setting)
            detectors = [build_detector(section) for _ in range(setting.workers)]
            backend = detectors[0].backend
            shape = tuple(backend.input_shape)
            precision = str(getattr(backend, "precision", "fp32"))
            if setting.params.get("precision") == "bf16" and precision != "bf16":
                precision += "+bf16"  # an INT8 model with the rest of its graph in bf16
            rows.append(
                Row(
                    model=Path(model).name,
                    backend=setting.backend,
                    setting=setting.name,
                    precision=precision,
                    batch=int(shape[0]),
                    workers=setting.workers,
                    params=setting.params,
                    candidate=setting.candidate,
                )
            )
            engines[len(rows) - 1] = [d.backend for d in detectors]
    # Tensors at each model's input size (models may differ: 416 vs 640).
    prepared: dict[int, np.ndarray] = {}
    for index in range(len(rows)):
        backend = engines[index][0]
        prepared[index] = _tensor_for(backend, tensors)
    latencies = interleaved_latency(
        {str(i): partial(engines[i][0].infer, prepared[i]) for i in range(len(rows))}, rounds=6, per_round=10
    )
    fps: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    cpu: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    per_round = max(10, frames // rounds)
    for number in range(rounds):
        order = range(len(rows)) if number % 2 == 0 else reversed(range(len(rows)))
        for index in order:
            calls = [partial(engine.infer, prepared[index]) for engine in engines[index]]
            start = time.process_time()
            fps[index].append(parallel_fps(calls, per_round))
            done = per_round // len(calls) * len(calls)
            cpu[index].append((time.process_time() - start) * 1e3 / done)
    for index, row in enumerate(rows):
        values = latencies[str(index)]
        row.latency_p50_ms = float(np.percentile(values, 50))
        row.latency_p99_ms = float(np.percentile(values, 99))
        row.fps = statistics.median(fps[index])
        row.fps_rounds = fps[index]
        row.cpu_ms_per_frame = statistics.median(cpu[index])
        row.cpu_rounds = cpu[index]
    engines.clear()
    if composed:
        for row, model in zip(rows, _models_of(rows, models), strict=True):
            setting = Setting(row.backend, row.setting, row.params, row.workers, row.candidate)
            run_sections = {k: dict(v) for k, v in sections.items()}
            run_sections["detector"] = detector_section(sections["detector"], model, setting)
            row.composed_fps = float(measure_composed(run_sections, frames)["fps"])
    return {"rows": [_row_dict(r) for r in rows], "ratios": ratios(rows)}


def _models_of(rows: Sequence[Row], models: Sequence[str]) -> list[str]:
    by_name = {Path(m).name: m for m in models}
    return [by_name[r.model] for r in rows]


def _tensor_for(backend: Any, tensors: Sequence[np.ndarray]) -> np.ndarray:
    shape = tuple(backend.input_shape)
    for tensor in tensors:
        if tuple(tensor.shape) == shape:
            return tensor
    rng = np.random.default_rng(0)
    return rng.random(shape, dtype=np.float32)


def _row_dict(row: Row) -> dict[str, Any]:
    return {
        "model": row.model,
        "backend": row.backend,
        "setting": row.setting,
        "precision": row.precision,
        "batch": row.batch,
        "workers": row.workers,
        "latency_p50_ms": row.latency_p50_ms,
        "latency_p99_ms": row.latency_p99_ms,
        "fps": row.fps,
        "composed_fps": row.composed_fps,
        "params": row.params,
        "fps_rounds": row.fps_rounds,
        "cpu_ms_per_frame": row.cpu_ms_per_frame,
        "cpu_rounds": row.cpu_rounds,
        "candidate": row.candidate,
    }


def paired(a: Row, b: Row, *, cpu: bool = False) -> dict[str, float] | None:
    """``a`` / ``b`` fps round by round (each round measures every row within seconds): median, min, max. With
    ``cpu``: how many times less CPU time per frame ``a`` takes than ``b``, round by round."""
    pairs = zip(b.cpu_rounds, a.cpu_rounds, strict=False) if cpu else zip(a.fps_rounds, b.fps_rounds, strict=False)
    values = [x / y for x, y in pairs if y]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def ratios(rows: Sequence[Row]) -> dict[str, Any]:
    """Per model: each backend's best fps among its candidate settings (bf16 rows aside: they change the
    outputs; the rewrites-off row aside: a reference) and the OpenVINO / onnxruntime ratio; per INT8 model, its
    best fps against the FP32 model's best fps on the same backend, overall, and against OpenVINO's bf16 (same
    run). Each ratio also per round and by CPU time per frame (``paired``)."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.model, row.backend)
        if row.candidate and (key not in best or row.fps > best[key].fps):
            best[key] = row
    bf16 = [r for r in rows if r.precision == "bf16"]
    out: dict[str, Any] = {}
    for model in sorted({r.model for r in rows}):
        entry: dict[str, Any] = {
            backend: {"fps": r.fps, "setting": r.setting, "composed_fps": r.composed_fps}
            for (m, backend), r in best.items()
            if m == model
        }
        if "openvino" in entry and "onnxruntime" in entry and entry["onnxruntime"]["fps"]:
            entry["openvino_vs_onnxruntime_fps"] = entry["openvino"]["fps"] / entry["onnxruntime"]["fps"]
            pair = best[(model, "openvino")], best[(model, "onnxruntime")]
            entry["openvino_vs_onnxruntime_paired"] = paired(*pair)
            entry["openvino_vs_onnxruntime_cpu"] = paired(*pair, cpu=True)
            base = entry["onnxruntime"]["composed_fps"]
            if base:
                entry["openvino_vs_onnxruntime_composed_fps"] = entry["openvino"]["composed_fps"] / base
        out[model] = entry
    int8 = [r for r in best.values() if r.precision == "int8"]
    fp32 = [r for r in best.values() if r.precision == "fp32"]
    for row in int8:
        quantized = max((r for r in int8 if r.model == row.model), key=lambda r: r.fps)
        if row is not quantized or not fp32:
            continue
        same = [r for r in fp32 if r.backend == row.backend]
        overall = max(fp32, key=lambda r: r.fps)
        out[row.model]["int8"] = {
            "best_backend": row.backend,
            "fps": row.fps,
            "vs_fp32_same_backend": row.fps / max(same, key=lambda r: r.fps).fps if same else None,
            "vs_fp32_best": row.fps / overall.fps,
            "vs_fp32_best_paired": paired(row, overall),
            "vs_fp32_best_cpu": paired(row, overall, cpu=True),
            "fp32_best": f"{overall.model} {overall.backend} ({overall.setting})",
            "vs_fp32_model_bf16": (
                row.fps / max(r.fps for r in bf16 if r.model == overall.model)
                if any(r.model == overall.model for r in bf16)
                else None
            ),
        }
    return out


def format_table(result: dict[str, Any]) -> str:
    header = (
        f"{'model':<22} {'backend':<12} {'setting':<28} {'prec':<9} {'batch':>5} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'fps':>7} {'cpu ms/f':>8} {'composed':>9}"
    )
    lines = [
        "Backends (same run; fps = model only at the setting's parallelism; cpu ms/f = process CPU time per frame, "
        "which other jobs' load moves far less than fps)",
        header,
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['model']:<22} {row['backend']:<12} {row['setting']:<28} {row['precision']:<9} {row['batch']:>5} "
            f"{row['latency_p50_ms']:7.2f} {row['latency_p99_ms']:7.2f} {row['fps']:7.1f} "
            f"{row['cpu_ms_per_frame']:8.2f} {row['composed_fps']:9.1f}"
        )
    for model, entry in result["ratios"].items():
        if "openvino_vs_onnxruntime_fps" in entry:
            ratio = entry["openvino_vs_onnxruntime_fps"]
            lines.append(
                f"{model}: OpenVINO / onnxruntime, best settings: {ratio:.2f}x model-only"
                + _spread(entry.get("openvino_vs_onnxruntime_paired"))
                + _spread(entry.get("openvino_vs_onnxruntime_cpu"), "CPU time per frame")
                + (
                    f", {entry['openvino_vs_onnxruntime_composed_fps']:.2f}x composed"
                    if "openvino_vs_onnxruntime_composed_fps" in entry
                    else ""
                )
            )
        if "int8" in entry:
            q = entry["int8"]
            same = q["vs_fp32_same_backend"]
            lines.append(
                f"{model}: INT8 on {q['best_backend']} {q['fps']:.1f} fps = "
                + (f"{same:.2f}x FP32 on {q['best_backend']}, " if same else "")
                + f"{q['vs_fp32_best']:.2f}x the best FP32"
                + _spread(q.get("vs_fp32_best_paired"))
                + _spread(q.get("vs_fp32_best_cpu"), "CPU time per frame")
                + f" ({q['fp32_best']})"
                + (f", {q['vs_fp32_model_bf16']:.2f}x the FP32 model run in bf16" if q["vs_fp32_model_bf16"] else "")
            )
    return "\n".join(lines)


def _spread(ratio: dict[str, float] | None, what: str = "per round") -> str:
    if not ratio or ratio["rounds"] < 2:
        return ""
    return f" ({what}: median {ratio['median']:.2f}x, {ratio['min']:.2f}-{ratio['max']:.2f})"
