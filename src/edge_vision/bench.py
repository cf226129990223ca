"""``edge-vision bench``: a latency budget per stage, and end-to-end throughput of the composed pipeline
against model-only throughput measured in the same run (and, optionally, one process per stage).

Numbers on a shared 2-core VM drift between runs: compare the ratios printed by one run, not absolute
figures across runs.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_vision.core import assets, config
from edge_vision.core.detections import Detections
from edge_vision.core.packet import decoded_packets
from edge_vision.core.runtime.build import (
    DetectStage,
    EventStage,
    Pipeline,
    TrackStage,
    build_detector,
    build_rules,
    build_source,
    build_tracker,
)

STAGE_ORDER = ("decode", "preprocess", "inference", "postprocess", "tracking", "events", "publish")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def measure_stages(sections: dict[str, dict[str, Any]], frames: int) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Run the stages one after another on one thread: the clean per-stage cost, no overlap."""
    from edge_vision.ros.conversions import detections_to_msg, frame_header, frame_to_image

    camera = dict(sections["camera"], max_frames=frames, rate=0.0, loop=True)
    source = build_source(camera)
    detector = build_detector(sections["detector"])
    detect, track = DetectStage([detector]), TrackStage(build_tracker(sections["tracker"]))
    events = EventStage(build_rules(sections["events"]["rules"], detector.labels), lambda exc: None)
    timings: dict[str, list[float]] = {name: [] for name in STAGE_ORDER}
    tensors: list[np.ndarray] = []
    for packet in decoded_packets(source):
        frame = packet.frame
        detect.process(packet)
        track.process(packet)
        events.process(packet)
        t1 = time.perf_counter()
        # What publishing costs when somebody subscribes: building the Image and Detection2DArray messages.
        frame_to_image(frame)
        tracks = packet.tracks if packet.tracks is not None else Detections.empty()
        detections_to_msg(tracks, frame_header(frame), detector.labels)
        packet.timings_ms["publish"] = (time.perf_counter() - t1) * 1e3
        for name in STAGE_ORDER:
            timings[name].append(packet.timings_ms[name])
        if len(tensors) < 64:
            tensors.append(detector.adapter.preprocess(frame.image)[0])
    source.close()
    return timings, tensors


def measure_model_only(
    sections: dict[str, dict[str, Any]], tensors: list[np.ndarray], frames: int, *, runtime_defaults: bool
) -> float:
    """Inference alone on prepared tensors: no decode, no pre/post-processing, no tracking.

    runtime_defaults=True: one session with the runtime's default threading, run back to back (what
    onnxruntime_perf_test or trtexec report). False: the pipeline's own settings (``workers`` sessions of
    ``intra_op_threads`` each, in parallel threads), the ceiling the pipeline's detector stage could reach.
    """
    detector = dict(sections["detector"])
    if runtime_defaults:
        detector.update(workers=1, intra_op_threads=0)
    backends = [build_detector(detector).backend for _ in range(detector["workers"])]
    per_worker = max(1, frames // len(backends))

    def work(backend: Any) -> None:
        for i in range(per_worker):
            backend.infer(tensors[i % len(tensors)])

    for backend in backends:
        for tensor in tensors[:5]:
            backend.infer(tensor)
    threads = [threading.Thread(target=work, args=(b,)) for b in backends]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_worker * len(backends) / (time.perf_counter() - t0)


def measure_composed(sections: dict[str, dict[str, Any]], frames: int) -> dict[str, Any]:
    """The composed runtime (core graph, no ROS: with no subscriber the ROS ports do nothing)."""
    run_sections = {k: dict(v) for k, v in sections.items()}
    run_sections["camera"].update(max_frames=frames, rate=0.0, loop=True)
    run_sections["visualizer"]["video_path"] = ""
    run_sections["events"]["actions"] = {}
    pipeline = Pipeline(run_sections)
    pipeline.run()
    report = pipeline.health.report()
    summary = pipeline.summary
    return {
        "fps": summary.frames / summary.seconds,
        "frames": summary.frames,
        "latency_ms_p50": report.latency_p50_ms,
        "latency_ms_p99": report.latency_p99_ms,
        "stages": {s.name: {"p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "dropped": s.dropped} for s in report.stages},
    }


def measure_separate(sections: dict[str, dict[str, Any]], frames: int) -> dict[str, Any]:
    """One process per stage over DDS (shared memory); throughput seen by a subscriber to ``tracks``."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import Detection2DArray

    from edge_vision.ros.processes import start_nodes, stop_nodes

    run_sections = {k: dict(v) for k, v in sections.items()}
    run_sections["camera"].update(max_frames=frames, rate=0.0, loop=True, wait_for_subscribers=1)
    run_sections["visualizer"]["video_path"] = ""
    run_sections["events"]["actions"] = {}
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        params = config.write_ros_parameters(
            {k: v for k, v in run_sections.items() if k != "pipeline"}, Path(tmp) / "p.yaml"
        )
        context = rclpy.Context()
        rclpy.init(args=[], context=context)
        node = rclpy.create_node("edge_vision_bench", context=context)
        qos = QoSProfile(depth=sections["tracker"]["qos_depth"], reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Detection2DArray, "tracks", lambda _m: stamps.append(time.perf_counter()), qos)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        # Consumers first, so the camera's first frames find them matched.
        downstream = start_nodes(params, ("detector", "tracker"), log_dir=tmp)
        deadline = time.monotonic() + 30
        while node.count_publishers("tracks") == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        camera = start_nodes(params, ("camera",), log_dir=tmp)
        deadline = time.monotonic() + 60 + frames / 5
        while camera[0].poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        stop_nodes(camera + downstream)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {"fps": fps, "frames_received": len(stamps), "frames_sent": frames}


def run_bench(
    sections: dict[str, dict[str, Any]],
    *,
    frames: int,
    json_path: str | None,
    separate: bool,
    backend_models: list[str] | None = None,
    capture: bool = True,
) -> int:
    """``backend_models``: models for the backend table (None = the configured model; [] = no table).
    ``capture``: the live-capture section (``bench_capture``: decode fps, RTSP latency, reconnect time)."""
    timings, tensors = measure_stages(sections, frames)
    # Model-only runs bracket the composed run; each figure is the better of its two, so the ratio is not
    # flattered by a quiet moment on a shared machine.
    model_fps = measure_model_only(sections, tensors, frames, runtime_defaults=True)
    ceiling_fps = measure_model_only(sections, tensors, frames, runtime_defaults=False)
    composed = measure_composed(sections, frames)
    model_fps = max(model_fps, measure_model_only(sections, tensors, frames, runtime_defaults=True))
    ceiling_fps = max(ceiling_fps, measure_model_only(sections, tensors, frames, runtime_defaults=False))
    separate_result = measure_separate(sections, frames) if separate else None

    rows = []
    total = 0.0
    print(f"\nLatency budget ({frames} frames, sequential, ms)")
    print(f"{'stage':<12} {'mean':>8} {'p50':>8} {'p95':>8}")
    for name in STAGE_ORDER:
        values = timings[name]
        mean = statistics.fmean(values) if values else 0.0
        total += mean
        rows.append(
            {"stage": name, "mean_ms": mean, "p50_ms": _percentile(values, 50), "p95_ms": _percentile(values, 95)}
        )
        print(f"{name:<12} {mean:8.2f} {rows[-1]['p50_ms']:8.2f} {rows[-1]['p95_ms']:8.2f}")
    print(f"{'total':<12} {total:8.2f}   (sequential ceiling {1000 / total:.1f} fps)")
    ratio = composed["fps"] / model_fps if model_fps else 0.0
    print("\nThroughput (same run)")
    workers, threads = sections["detector"]["workers"], sections["detector"].get("intra_op_threads", 0)
    print(f"{'model only: one session, runtime defaults':<46} {model_fps:8.1f} fps")
    label = f"model only: {workers} session(s) x {threads or 'default'} thread(s)"
    print(f"{label:<46} {ceiling_fps:8.1f} fps")
    print(f"{'composed pipeline (decode->events, threads)':<46} {composed['fps']:8.1f} fps  = {ratio:.2f}x model-only")
    print(f"{'':<46} {'':8}      = {composed['fps'] / ceiling_fps:.2f}x model-only at the pipeline's settings")
    p50, p99 = composed["latency_ms_p50"], composed["latency_ms_p99"]
    print(f"{'composed end-to-end latency p50 / p99':<46} {p50:8.1f} / {p99:.1f} ms")
    if separate_result is not None:
        sep_ratio = separate_result["fps"] / model_fps if model_fps else 0.0
        print(
            f"{'separate processes (DDS, shared memory)':<46} {separate_result['fps']:8.1f} fps  = {sep_ratio:.2f}x "
            f"model-only ({separate_result['frames_received']}/{frames} frames delivered)"
        )
    result = {
        "frames": frames,
        "stages": rows,
        "sequential_total_ms": total,
        "model_only_fps": model_fps,
        "model_only_pipeline_settings_fps": ceiling_fps,
        "composed_vs_model_only_pipeline_settings": composed["fps"] / ceiling_fps if ceiling_fps else 0.0,
        "composed": composed,
        "composed_vs_model_only": ratio,
        "separate": separate_result,
    }
    if backend_models != []:
        from edge_vision import bench_backends

        models = backend_models or [sections["detector"]["model"] or str(assets.find(assets.DEFAULT_MODEL))]
        table = bench_backends.measure(sections, models, tensors, frames=frames)
        result["backends"] = table
        print("\n" + bench_backends.format_table(table))
    if capture:
        from edge_vision import bench_capture

        capture_result = bench_capture.measure(sections)
        result["capture"] = capture_result
        print("\n" + bench_capture.format_table(capture_result))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {json_path}")
    return 0
