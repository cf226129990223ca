"""``edge-vision``: run the composed pipeline on a config, benchmark it, or print the config schema.

edge-vision run [config.yaml] [--video URI] [--model PATH] [--output-dir DIR] [--max-frames N]
edge-vision bench [config.yaml] [--frames N] [--json PATH]
edge-vision schema        (JSON Schema of the config: sections and every installed plugin's parameters)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_vision.core import assets, config
from edge_vision.core.errors import EdgeVisionError

DEFAULT_CONFIG = "config/pipeline.yaml"


def load_sections(path: str | None, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    sections = config.load_file(path or assets.find(DEFAULT_CONFIG))
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

    from edge_vision.ros.container import RosPipeline, failure_line

    sections = load_sections(args.config, args)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections["visualizer"]["video_path"] = sections["visualizer"]["video_path"] or str(out / "annotated.mp4")
    sections["events"]["output_dir"] = sections["events"]["output_dir"] or str(out)
    context = Context()
    rclpy.init(args=[], context=context)
    pipeline: RosPipeline | None = None
    try:
        pipeline = RosPipeline(sections=sections, context=context)
        code = pipeline.run()
        assert pipeline.pipeline is not None
        summary = pipeline.pipeline.summary
        result = summary.to_dict()
        result["ok"] = code == 0
        result["health"] = pipeline.health.report().message
        # One video per camera (annotated_<camera>.mp4 with several): name the files actually written.
        videos = [
            parts.annotate.video_path
            for parts in pipeline.pipeline.cameras.values()
            if parts.annotate is not None and parts.annotate.video_path
        ]
        result["outputs"] = {"video": videos[0] if len(videos) == 1 else videos, "events": str(out)}
        # Written under a temporary name and renamed: a reader never sees half a summary.
        temporary = out / ".summary.json.tmp"
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        temporary.replace(out / "summary.json")
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


def cmd_schema(args: argparse.Namespace) -> int:
    from edge_vision.core.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_vision.bench import run_bench

    sections = load_sections(args.config, args)
    return run_bench(sections, frames=args.frames, json_path=args.json, separate=not args.no_separate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="edge-vision", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the composed pipeline and write annotated video, events and a summary")
    run.add_argument("config", nargs="?", help=f"ROS-style parameter YAML (default: bundled {DEFAULT_CONFIG})")
    run.add_argument("--video", help="video file or stream URL (overrides camera.uri)")
    run.add_argument("--model", help="ONNX model (overrides detector.model)")
    run.add_argument("--labels", help="class-name file (overrides detector.labels)")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--output-dir", default="out", help="where annotated.mp4, events.jsonl, summary.json go")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="latency budget per stage, composed vs model-only vs separate processes")
    bench.add_argument("config", nargs="?")
    bench.add_argument("--video", help="video file (overrides camera.uri)")
    bench.add_argument("--model", help="ONNX model (overrides detector.model)")
    bench.add_argument("--frames", type=int, default=400, help="frames per measurement")
    bench.add_argument("--json", default="out/bench.json", help="write results here")
    bench.add_argument("--no-separate", action="store_true", help="skip the one-process-per-stage measurement")
    bench.set_defaults(func=cmd_bench)
    schema = sub.add_parser("schema", help="print the JSON Schema of the config (sections and installed plugins)")
    schema.set_defaults(func=cmd_schema)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except EdgeVisionError as exc:
        print(f"edge-vision: error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
