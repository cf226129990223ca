"""``edge-vision model install | rollback | list``: model roll-out on a device, with rollback.

edge-vision model install MODEL --store DIR [--node /detector] [config.yaml ...] [--samples VIDEO_OR_FOLDER]
    Validate MODEL on sample frames (the config's detector settings; frames from --samples, else the config's
    camera.uri, else the bundled video), copy it into the store, then:
    - without --node: make it the store's current model (a pipeline whose detector.model is STORE/current.onnx
      loads it at its next start);
    - with --node: swap it into that running node (``detector.model`` is a live parameter) and wait for its
      probation (detector.probation_s): accepted -> current, exit 0; rolled back by the pipeline -> exit 1 with
      the reason, current unchanged.
edge-vision model rollback --store DIR [--node /detector]    back to the previously current model
edge-vision model list --store DIR                           the current model and the history (JSON)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.errors import ConfigError
from edge_vision.core.model_store import ModelStore

SAMPLE_FRAMES = 5


def sample_frames(source: str, count: int = SAMPLE_FRAMES) -> list[NDArray[np.uint8]]:
    """A few bgr8 frames from a video file or a folder of images."""
    path = Path(source)
    if path.is_dir():
        import cv2

        images = []
        for item in sorted(path.iterdir()):
            image = cv2.imread(str(item)) if item.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else None
            if image is not None:
                images.append(image)
            if len(images) == count:
                break
        if not images:
            raise ConfigError(f"--samples {source}: no readable image in the folder")
        return images
    import av

    try:
        with av.open(str(source)) as container:
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="bgr24"))
                if len(frames) == count:
                    break
    except (OSError, av.FFmpegError) as exc:
        raise ConfigError(f"--samples {source}: cannot read frames: {exc}") from exc
    if not frames:
        raise ConfigError(f"--samples {source}: no frame decoded")
    return frames


def validate_offline(model: Path, args: argparse.Namespace) -> float:
    from edge_vision.cli import load_sections
    from edge_vision.core import assets
    from edge_vision.core.runtime.build import build_detector, labels_file
    from edge_vision.core.runtime.rollout import validate

    sections = load_sections(args.config, argparse.Namespace())  # not args: its ``model`` is the new one
    running = sections["detector"]
    # Like a live roll-out: without detector.labels a model takes the configured model's labels (the bundled
    # COCO names for the default model).
    detector = {**running, "model": str(model), "labels": labels_file(running)}
    samples = args.samples or sections["camera"].get("uri") or str(assets.find(assets.DEFAULT_VIDEO))
    return validate(str(model), [build_detector(detector)], sample_frames(samples))


class LiveNode:
    """The running pipeline's detector node, reached with rclpy's parameter services and /diagnostics."""

    def __init__(self, name: str, timeout: float) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter_client import AsyncParameterClient

        self.rclpy = rclpy
        self.context = Context()
        rclpy.init(args=[], context=self.context)
        self.node = rclpy.create_node("edge_vision_model_cli", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.client = AsyncParameterClient(self.node, name)
        self.name = name
        self.model_status: str | None = None  # the latest "model" condition on /diagnostics ("" = none)
        self.status_at = 0.0
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        if not self.client.wait_for_services(timeout_sec=timeout):
            self.close()
            raise ConfigError(f"--node {name}: no such node answers on this ROS domain within {timeout:.0f} s")

    def _on_diagnostics(self, msg: Any) -> None:
        namespace = self.name.rsplit("/", 1)[0]  # "/cam1/detector" -> "/cam1"; "/detector" -> ""
        for status in msg.status:
            # "edge_vision: /cam1/pipeline" (the process's owner node) or "edge_vision: /cam1/detector front"
            owner = status.name.removeprefix("edge_vision: ").split(" ")[0]
            if not status.name.startswith("edge_vision: ") or owner.rsplit("/", 1)[0] != namespace:
                continue
            values = {kv.key: kv.value for kv in status.values}
            self.model_status = values.get("model", "")
            self.status_at = time.monotonic()

    def _wait(self, future: Any, timeout: float = 10.0) -> Any:
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise ConfigError(f"--node {self.name}: no answer within {timeout:.0f} s")
        return future.result()

    def get(self, name: str) -> Any:
        from rclpy.parameter import parameter_value_to_python

        result = self._wait(self.client.get_parameters([name]))
        return parameter_value_to_python(result.values[0])

    def set_model(self, model: str) -> None:
        from rclpy.parameter import Parameter

        result = self._wait(self.client.set_parameters([Parameter("model", value=model)]))
        outcome = result.results[0]
        if not outcome.successful:
            raise ConfigError(f"{self.name} refused the model: {outcome.reason}")

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.1, end - time.monotonic())))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        if self.context.ok():
            self.rclpy.shutdown(context=self.context)


def roll_out(node: LiveNode, model: Path, margin_s: float = 60.0) -> tuple[bool, str]:
    """Swap ``model`` into the running node, then follow its probation. (accepted, what happened)."""
    probation_s = float(node.get("probation_s"))
    node.set_model(str(model))
    started = time.monotonic()
    print(f"{node.name}: running {model.name}; probation {probation_s:g} s", flush=True)
    seen = ""
    while time.monotonic() < started + probation_s + margin_s:
        node.spin(1.0)
        if node.model_status and node.model_status != seen:
            seen = node.model_status
            print(f"  {seen}", flush=True)
        running = str(node.get("model"))
        if running != str(model):
            return False, seen or f"the node runs {running} again"
        past = time.monotonic() > started + probation_s and node.status_at > started + probation_s
        if past and not node.model_status:
            return True, f"accepted after {time.monotonic() - started:.0f} s"
    return False, f"no outcome within {probation_s + margin_s:.0f} s (last: {seen or 'nothing on /diagnostics'})"


def cmd_install(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise ConfigError(f"model file not found: {model}")
    store = ModelStore(args.store)
    latency = validate_offline(model, args)
    stored = store.add(model)
    print(f"validated {model} on sample frames ({latency:.1f} ms per frame); stored as {stored}", flush=True)
    if not args.node:
        store.activate(stored)
        store.record(stored, str(model), "current")
        print(f"current: {stored.name} (loaded at the next start of a pipeline using {store.root / 'current.onnx'})")
        return 0
    node = LiveNode(args.node, args.timeout)
    try:
        accepted, what = roll_out(node, stored)
    finally:
        node.close()
    if accepted:
        store.activate(stored)
        store.record(stored, str(model), f"accepted: {what}")
        print(f"accepted: {stored.name} is current ({what})")
        return 0
    store.record(stored, str(model), f"rolled back: {what}")
    print(f"edge-vision: error: {stored.name} rolled back: {what}", file=sys.stderr)
    return 1


def cmd_rollback(args: argparse.Namespace) -> int:
    store = ModelStore(args.store)
    target = store.previous()
    if target is None:
        raise ConfigError(f"model store {store.root}: no earlier model to roll back to")
    if args.node:
        node = LiveNode(args.node, args.timeout)
        try:
            node.set_model(str(target))
        finally:
            node.close()
    store.activate(target)
    store.record(target, "rollback", "rollback")
    print(f"current: {target.name}" + (f" (running on {args.node})" if args.node else ""))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(json.dumps(ModelStore(args.store).as_dict(), indent=2))
    return 0


def add_commands(sub: Any) -> None:
    model = sub.add_parser("model", help="model roll-out with rollback (install, rollback, list)")
    commands = model.add_subparsers(dest="model_command", required=True)
    install = commands.add_parser("install", help="validate, store and roll out a model")
    install.add_argument("model", help="ONNX model to install")
    install.add_argument("config", nargs="*", help="parameter YAML layers whose detector settings apply")
    install.add_argument("--store", required=True, help="the device's model store folder")
    install.add_argument("--node", help="running detector node to swap it into (e.g. /detector, /cam1/detector)")
    install.add_argument("--samples", help="video or image folder to validate on (default: camera.uri)")
    install.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for --node to answer")
    install.set_defaults(func=cmd_install)
    rollback = commands.add_parser("rollback", help="make the previously current model current again")
    rollback.add_argument("--store", required=True)
    rollback.add_argument("--node", help="running detector node to swap it into")
    rollback.add_argument("--timeout", type=float, default=10.0)
    rollback.set_defaults(func=cmd_rollback)
    listing = commands.add_parser("list", help="the store's current model and history")
    listing.add_argument("--store", required=True)
    listing.set_defaults(func=cmd_list)
