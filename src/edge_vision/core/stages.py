"""The pipeline stages as ROS-free objects, built from validated config sections (see ``config``).

Each stage takes a ``FramePacket``, fills its part, and records its latency in ``packet.timings_ms``.
The ROS nodes wrap exactly these; ``edge-vision run`` composes the same objects in one process.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_vision.core import assets, plugins
from edge_vision.core.detection.detector import Detector, load_labels
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.interfaces import Action, Rule, Source, Tracker
from edge_vision.core.packet import FramePacket


def build_source(camera: dict[str, Any]) -> Source:
    uri = camera["uri"] or str(assets.find(assets.DEFAULT_VIDEO))
    source: Source = plugins.create(
        "sources",
        camera["source"],
        uri=uri,
        camera_id=camera["camera_id"],
        every_nth=camera["every_nth"],
        loop=camera["loop"],
        rate=camera["rate"],
        decode_threads=camera["decode_threads"],
        max_frames=camera["max_frames"],
    )
    return source


def resolve_labels(detector: dict[str, Any]) -> list[str] | None:
    """Labels from the config, COCO for the bundled model, else None (then the model must embed them)."""
    if detector["labels"]:
        return load_labels(detector["labels"])
    if not detector["model"]:
        return load_labels(assets.find(assets.DEFAULT_LABELS))
    return None


def build_detector(detector: dict[str, Any]) -> Detector:
    model = detector["model"] or str(assets.find(assets.DEFAULT_MODEL))
    labels = detector["labels"] or ("" if detector["model"] else str(assets.find(assets.DEFAULT_LABELS)))
    options: dict[str, Any] = {"intra_op_threads": detector["intra_op_threads"]}
    if detector["backend"] == "onnxruntime":
        providers = detector["providers"]
        options["providers"] = "auto" if providers in ([], ["auto"]) else providers
    return Detector.from_config(
        model,
        backend=detector["backend"],
        adapter=detector["adapter"],
        labels=labels or None,
        classes=detector["classes"] or None,
        confidence=detector["confidence"],
        iou=detector["iou"],
        max_detections=detector["max_detections"],
        backend_options=options,
    )


def build_tracker(tracker: dict[str, Any]) -> Tracker:
    params = {k: tracker[k] for k in ("track_thresh", "low_thresh", "new_track_thresh", "match_thresh", "track_buffer")}
    built: Tracker = plugins.create("trackers", tracker["tracker"], **params)
    return built


def _points(name: str, key: str, flat: Sequence[float], minimum: int) -> list[list[float]]:
    if len(flat) % 2 or len(flat) < 2 * minimum:
        raise ConfigError(f"events.rules.{name}.{key} needs >= {minimum} [x, y] pairs as a flat list, got {list(flat)}")
    return [[float(flat[i]), float(flat[i + 1])] for i in range(0, len(flat), 2)]


def build_rules(events: dict[str, Any], labels: Sequence[str]) -> list[Rule]:
    rules: list[Rule] = []
    for name, spec in events["rules"].items():
        params: dict[str, Any] = {"name": name, "labels": list(labels)}
        params["classes"] = spec.get("classes") or None
        kind = spec["type"]
        if kind == "line":
            params["start"] = _points(name, "start", spec.get("start", []), 1)[0]
            params["end"] = _points(name, "end", spec.get("end", []), 1)[0]
        elif kind == "zone":
            params["polygon"] = _points(name, "polygon", spec.get("polygon", []), 3)
        # Options the rule's schema knows, passed only where set: plugins keep their own defaults.
        for key in ("anchor", "min_frames", "forget_after_frames"):
            if key in spec:
                params[key] = spec[key]
        if kind == "line" and "min_distance" in spec:
            params["min_distance"] = spec["min_distance"]
        if kind == "zone" and "exit_on_lost" in spec:
            params["exit_on_lost"] = spec["exit_on_lost"]
        rules.append(plugins.create("rules", kind, **params))
    return rules


class DetectStage:
    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def process(self, packet: FramePacket) -> FramePacket:
        packet.detections = self.detector.detect(packet.frame.image)
        timings = self.detector.timings
        packet.timings_ms["preprocess"] = timings.preprocess_ms
        packet.timings_ms["inference"] = timings.inference_ms
        packet.timings_ms["postprocess"] = timings.postprocess_ms
        return packet


class TrackStage:
    """Runs the tracker on detected frames; on frames the detector skipped, reports the tracker's
    prediction so downstream rules and views still see every track (interpolation)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def process(self, packet: FramePacket) -> FramePacket:
        t0 = time.perf_counter()
        if packet.detections is not None:
            packet.tracks = self.tracker.update(packet.detections, packet.frame)
        else:
            predict = getattr(self.tracker, "predict", None)
            packet.tracks = predict(packet.frame) if predict is not None else Detections.empty()
        packet.timings_ms["tracking"] = (time.perf_counter() - t0) * 1e3
        return packet


class EventStage:
    def __init__(self, rules: Sequence[Rule], actions: Sequence[Action] = ()) -> None:
        self.rules = list(rules)
        self.actions = list(actions)

    def process(self, packet: FramePacket) -> FramePacket:
        t0 = time.perf_counter()
        tracks = packet.tracks if packet.tracks is not None else Detections.empty()
        events: list[Event] = []
        for rule in self.rules:
            events.extend(rule.update(tracks, packet.frame))
        if events:
            for action in self.actions:
                action.handle(events, packet.frame, tracks)
        packet.events = events
        packet.timings_ms["events"] = (time.perf_counter() - t0) * 1e3
        return packet

    def close(self) -> None:
        for action in self.actions:
            action.close()


def build_actions(events: dict[str, Any]) -> list[Action]:
    actions: list[Action] = []
    if events["jsonl_path"]:
        Path(events["jsonl_path"]).parent.mkdir(parents=True, exist_ok=True)
        actions.append(plugins.create("actions", "jsonl", path=events["jsonl_path"]))
    return actions
