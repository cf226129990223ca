"""``edge-vision``: run the composed pipeline on a config, benchmark it, or print the config schema.

edge-vision run [config.yaml ...] [--video URI] [--model PATH] [--output-dir DIR] [--max-frames N]
edge-vision bench [config.yaml] [--frames N] [--json PATH]
edge-vision schema        (JSON Schema of the config: sections and every installed plugin's parameters)
edge-vision soak --minutes N [config.yaml ...] [--interval S] [--json PATH]   (leaks and drift on a looping video)
edge-vision config show [fleet.yaml site.yaml device.yaml] [--origin]   (the merged configuration)
edge-vision quantize MODEL --data IMAGES_OR_VIDEO [-o OUT] [--labelled DIR] [--keep-fp32 N] [--report PATH]
edge-vision build-engine MODEL.onnx [--precision fp16|int8] [--max-batch N] [--calibration-data PATH]
edge-vision model install MODEL --store DIR [--node /detector] | rollback | list   (see edge_vision.model_cli)
edge-vision make-bag VIDEO BAG | record BAG | replay BAG   (bags: see edge_vision.bag_cli)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_vision.core import assets, config
from edge_vision.core.errors import EdgeVisionError

DEFAULT_CONFIG = "config/pipeline.yaml"


def load_sections(paths: str | list[str] | None, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config layers (fleet, site, device... later files win; default: the bundled config), then the
    command line's overrides."""
    if isinstance(paths, str):
        paths = [paths]
    sections = config.load_files(paths or [str(assets.find(DEFAULT_CONFIG))])
    overrides: dict[str, dict[str, Any]] = {
        "camera": {"uri": getattr(args, "video", None), "max_frames": getattr(args, "max_frames", None)},
        "detector": {"model": getattr(args, "model", None), "labels": getattr(args, "labels", None)},
    }
    for section, values in overrides.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            body = {k: v for k, v in sections[section].items() if k != "cameras"}
            body.update(sections[section].get("cameras", {}))
            body.update(given)
            sections[section] = config.resolve(section, body)
    return sections


def cmd_run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    from edge_vision.core.actions.atomic import publish, temp_path
    from edge_vision.core.runtime.health import WARN
    from edge_vision.core.storage import check_writable
    from edge_vision.ros.container import RosPipeline, StopSignals, failure_line

    sections = load_sections(args.config, args)
    # Unwritable (read-only, no permission): one line naming the folder, exit 2, before any work.
    out = check_writable(args.output_dir, "--output-dir")
    sections["visualizer"]["video_path"] = sections["visualizer"]["video_path"] or str(out / "annotated.mp4")
    sections["events"]["output_dir"] = sections["events"]["output_dir"] or str(out)
    if args.foxglove is not None or args.foxglove_wait is not None:
        foxglove = {"foxglove": True} | ({"foxglove_port": args.foxglove} if (args.foxglove or 0) >= 0 else {})
        if args.foxglove_wait is not None:
            foxglove["foxglove_wait"] = args.foxglove_wait
        sections["pipeline"] = config.resolve("pipeline", {**sections["pipeline"], **foxglove})
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals()  # SIGTERM/SIGINT: drain, finish the video and events, write the summary, exit 0
    stop.install()
    pipeline: RosPipeline | None = None
    try:
        pipeline = RosPipeline(sections=sections, context=context)
        if pipeline.pipeline is not None and pipeline.pipeline.view is not None:
            print(f"foxglove: {pipeline.pipeline.view.url} (Foxglove: Open connection, WebSocket)", flush=True)
        code = pipeline.run(stop)
        assert pipeline.pipeline is not None
        storage = pipeline.pipeline.storage
        summary = pipeline.pipeline.summary
        result = summary.to_dict()
        result["ok"] = code == 0
        result["device_id"] = pipeline.device_id
        result["health"] = pipeline.health.report().message
        # What went wrong without failing the run (a truncated input file, bad input messages...): exit 0 with
        # these listed; camera.strict turns a damaged file into a failure instead.
        result["warnings"] = [f"{c.name}: {c.message}" for c in pipeline.health.conditions() if c.level == WARN]
        # One video per camera (annotated_<camera>.mp4 with several), or its segments: the files actually written.
        videos = [
            video
            for parts in pipeline.pipeline.cameras.values()
            if parts.annotate is not None
            for video in parts.annotate.video_files
        ]
        result["outputs"] = {"video": videos[0] if len(videos) == 1 else videos, "events": str(out)}
        if pipeline.stop_report is not None:
            result["stop"] = pipeline.stop_report  # which signal, seconds to drain, anything abandoned
        result["storage"] = storage.summary() | {"guards": [g.summary() for g in pipeline.pipeline.guards]}
        # Written under a temporary name and renamed: a reader never sees half a summary.
        target = out / "summary.json"
        temporary = temp_path(target)
        try:
            temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            publish(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            if not storage.failed(str(target), exc, "summary not written (printed below)"):
                raise
            print(json.dumps(result, indent=2))
            if storage.policy == "stop":
                code = code or 1
        print(summary.format())
        print(f"annotated video: {', '.join(videos) or 'none'}\noutputs in: {out}\nsummary: {out / 'summary.json'}")
        if code and (line := failure_line(pipeline)):
            print(f"edge-vision: error: {line}", file=sys.stderr)
        return code
    finally:
        if pipeline is not None:
            pipeline.destroy()
        if context.ok():
            rclpy.shutdown(context=context)


def cmd_config_show(args: argparse.Namespace) -> int:
    """The merged result of the layers, every parameter resolved (defaults filled in), as one ROS parameter
    file (``ros2 launch ... params_file:=``); ``--origin``: which layer set each value."""
    import yaml

    paths = args.files or [str(assets.find(DEFAULT_CONFIG))]
    sections = config.load_files(paths)
    if args.origin:
        _merged, origin = config.merge_layers(paths)
        for key, where in origin.items():
            print(f"{key}: {where}")
        return 0
    print(f"# edge-vision config show {' '.join(paths)}", flush=True)
    sys.stdout.write(yaml.safe_dump(config.to_ros_parameters(sections), sort_keys=False))
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    from edge_vision.soak import run_soak

    return run_soak(
        load_sections(args.config, args),
        minutes=args.minutes,
        interval=args.interval,
        rate=args.rate,
        json_path=args.json,
        output_dir=args.output_dir,
    )


def cmd_schema(args: argparse.Namespace) -> int:
    from edge_vision.core.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_vision.bench import run_bench

    sections = load_sections(args.config, args)
    models = [] if args.no_backends else (args.backend_models or None)
    return run_bench(
        sections,
        frames=args.frames,
        json_path=args.json,
        separate=not args.no_separate,
        backend_models=models,
        capture=not args.no_capture,
    )


def cmd_quantize(args: argparse.Namespace) -> int:
    from edge_vision.core.detection import quantize

    quantize.run(
        args.model,
        data=args.data,
        output=args.output,
        frames=args.frames,
        eval_count=args.eval_frames,
        labelled=args.labelled,
        labels=args.labels,
        keep_fp32=args.keep_fp32,
        ignore_layers=args.ignore_layers,
        method=args.method,
        activations=args.activations,
        report_path=args.report,
    )
    return 0


def cmd_build_engine(args: argparse.Namespace) -> int:
    from edge_vision.core.detection.tensorrt_backend import build_engine

    built = build_engine(
        args.model,
        precision=args.precision,
        batch=args.batch,
        max_batch=max(args.batch, args.max_batch),
        input_size=args.input_size or (),
        dla_core=args.dla_core,
        workspace_mb=args.workspace_mb,
        calibration_data=args.calibration_data or "",
        calibration_frames=args.calibration_frames,
        cache_dir=args.engine_cache or "",
        device=args.device,
        rebuild=args.rebuild,
    )
    print(f"engine: {built.path}\nkey: {built.key.as_dict()}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="edge-vision", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the composed pipeline and write annotated video, events and a summary")
    run.add_argument(
        "config",
        nargs="*",
        help=f"ROS-style parameter YAML(s), merged in order: fleet, site, device (default: bundled {DEFAULT_CONFIG})",
    )
    run.add_argument("--video", help="video file or stream URL (overrides camera.uri)")
    run.add_argument("--model", help="ONNX model (overrides detector.model)")
    run.add_argument("--labels", help="class-name file (overrides detector.labels)")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--output-dir", default="out", help="where annotated.mp4, events.jsonl, summary.json go")
    run.add_argument(
        "--foxglove",
        nargs="?",
        type=int,
        const=-1,
        metavar="PORT",
        help="serve a Foxglove WebSocket view on pipeline.foxglove_host:PORT (default 8765; 0 = any free port)",
    )
    run.add_argument("--foxglove-wait", type=float, metavar="S", help="wait up to S s for a Foxglove client first")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="latency budget per stage, composed vs model-only vs separate processes")
    bench.add_argument("config", nargs="*", help="parameter YAML(s), merged in order")
    bench.add_argument("--video", help="video file (overrides camera.uri)")
    bench.add_argument("--model", help="ONNX model (overrides detector.model)")
    bench.add_argument("--frames", type=int, default=400, help="frames per measurement")
    bench.add_argument("--json", default="out/bench.json", help="write results here")
    bench.add_argument("--no-separate", action="store_true", help="skip the one-process-per-stage measurement")
    bench.add_argument("--backend-models", nargs="+", help="models of the backend table (default: detector.model)")
    bench.add_argument("--no-backends", action="store_true", help="skip the backend table")
    bench.add_argument(
        "--no-capture", action="store_true", help="skip the capture section (decode fps, RTSP latency, reconnect)"
    )
    bench.set_defaults(func=cmd_bench)
    quant = sub.add_parser("quantize", help="INT8 static quantization for the CPU, with a latency/accuracy report")
    quant.add_argument("model", help="FP32 (or dynamic-int8) ONNX detector")
    quant.add_argument("--data", required=True, help="calibration images: a folder of images or a video")
    quant.add_argument("-o", "--output", help="INT8 model path (default: MODEL.int8.onnx beside the model)")
    quant.add_argument("--frames", type=int, default=128, help="calibration frames")
    quant.add_argument("--eval-frames", type=int, default=100, help="frames (not calibration ones) for agreement")
    quant.add_argument("--labelled", help="labelled folder (YOLO txt or COCO json): report mAP50 against it")
    quant.add_argument("--labels", help="class-name file, for a model that embeds none")
    quant.add_argument("--keep-fp32", type=int, default=0, help="keep the N most sensitive convolutions in FP32")
    quant.add_argument("--ignore-layers", nargs="+", default=[], help="node names to keep in FP32")
    quant.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"))
    quant.add_argument("--activations", default="uint8", choices=("uint8", "int8"), help="uint8: works on OpenVINO")
    quant.add_argument("--report", default="out/quantize.json", help="write the report (JSON) here")
    quant.set_defaults(func=cmd_quantize)
    engine = sub.add_parser("build-engine", help="build (or find cached) the TensorRT engine of an ONNX model")
    engine.add_argument("model", help="ONNX model")
    engine.add_argument("--precision", default="fp16", choices=("fp16", "fp32", "int8"))
    engine.add_argument("--batch", type=int, default=1, help="batch the profile is optimised for")
    engine.add_argument("--max-batch", type=int, default=1, help="largest batch of the profile")
    engine.add_argument("--input-size", type=int, nargs="+", help="H W for a model with dynamic height/width")
    engine.add_argument("--dla-core", type=int, default=-1, help="DLA core (Jetson); -1 = GPU")
    engine.add_argument("--workspace-mb", type=int, default=2048)
    engine.add_argument("--calibration-data", help="INT8: folder of images or a video")
    engine.add_argument("--calibration-frames", type=int, default=256)
    engine.add_argument("--engine-cache", help="engine folder (default ~/.cache/edge_vision/engines)")
    engine.add_argument("--device", type=int, default=0, help="CUDA device")
    engine.add_argument("--rebuild", action="store_true", help="build even when the cache has it")
    engine.set_defaults(func=cmd_build_engine)
    conf = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    show = conf.add_parser("show", help="print the merged configuration of layered files (later files win)")
    show.add_argument("files", nargs="*", help=f"fleet, site, device... YAML files (default: bundled {DEFAULT_CONFIG})")
    show.add_argument("--origin", action="store_true", help="list which file set each parameter instead")
    show.set_defaults(func=cmd_config_show)
    soak = sub.add_parser("soak", help="run on a looping video for N minutes: RSS, fds, threads, fps, latency drift")
    soak.add_argument("config", nargs="*", help="parameter YAML(s), merged in order (default: the bundled config)")
    soak.add_argument("--minutes", type=float, required=True, help="how long (0.1 = 6 s)")
    soak.add_argument("--interval", type=float, help="seconds between samples (default: ~30 samples, 1-60 s apart)")
    soak.add_argument("--rate", type=float, default=1.0, help="file playback rate: 1.0 = its frame rate (a camera)")
    soak.add_argument("--video", help="video file or stream URL (overrides camera.uri)")
    soak.add_argument("--model", help="ONNX model (overrides detector.model)")
    soak.add_argument("--json", default="out/soak.json", help="write samples and fits here")
    soak.add_argument("--output-dir", default="out/soak", help="where the pipeline's outputs (events.jsonl) go")
    soak.set_defaults(func=cmd_soak)
    schema = sub.add_parser("schema", help="print the JSON Schema of the config (sections and installed plugins)")
    schema.set_defaults(func=cmd_schema)
    from edge_vision.bag_cli import add_commands as add_bag_commands

    add_bag_commands(sub)  # make-bag, record, replay
    from edge_vision.model_cli import add_commands as add_model_commands

    add_model_commands(sub)  # model install | rollback | list
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except EdgeVisionError as exc:
        print(f"edge-vision: error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
