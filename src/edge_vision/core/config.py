"""Parameter schema: one declaration per parameter, used by the ROS nodes (declared ROS parameters with
descriptors and ranges) and by ``edge-vision run`` (plain YAML). Validation errors name the parameter.

The YAML format is the ROS 2 parameter-file format, so one file serves ``ros2 launch`` and ``edge-vision``:

    detector:
      ros__parameters:
        confidence: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_vision.core.errors import ConfigError

ParamValue = bool | int | float | str | list[float] | list[str] | list[int]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: ParamValue
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    def validate(self, section: str, value: Any) -> ParamValue:
        where = f"{section}.{self.name}"
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is list:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where} must be a list, got {value!r}")
            value = list(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where} must be of type {expected.__name__}, got {value!r} ({type(value).__name__})")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{where} must be finite, got {value}")
            if self.min is not None and value < self.min:
                raise ConfigError(f"{where} must be >= {self.min}, got {value}")
            if self.max is not None and value > self.max:
                raise ConfigError(f"{where} must be <= {self.max}, got {value}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        return value


def _params(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in params}


QOS = (
    Param("qos_reliability", "reliable", "QoS of the stage's topics", choices=("reliable", "best_effort")),
    Param("qos_depth", 5, "QoS history depth", min=1, max=1000),
)

SCHEMA: dict[str, dict[str, Param]] = {
    "camera": _params(
        Param("source", "file", "source plugin (entry-point group edge_vision.sources)"),
        Param("uri", "", "file path or stream URL; empty = the bundled sample video"),
        Param("camera_id", "camera", "frame_id stamped on every image and result"),
        Param("every_nth", 1, "process every Nth decoded frame", min=1, max=1000),
        Param("loop", False, "restart the file at its end"),
        Param("rate", 0.0, "0 = as fast as possible, 1.0 = the stream's own frame rate", min=0.0, max=100.0),
        Param("decode_threads", 0, "FFmpeg decoder threads (0 = auto)", min=0, max=64),
        Param("max_frames", 0, "stop after this many frames (0 = no limit)", min=0),
        Param("wait_for_subscribers", 0, "standalone: hold the first frame until this many subscribers match", min=0),
        *QOS,
    ),
    "detector": _params(
        Param("model", "", "ONNX model path; empty = the bundled YOLOX-nano"),
        Param("labels", "", "class-name file, one per line; empty = from the model, or COCO for the default"),
        Param("backend", "onnxruntime", "inference backend plugin (edge_vision.backends)"),
        Param("adapter", "auto", "model adapter plugin (edge_vision.model_adapters); auto = by output shape"),
        Param("providers", ["auto"], "onnxruntime execution providers, best first"),
        Param("intra_op_threads", 0, "inference threads per worker (0 = runtime default)", min=0, max=256),
        Param("workers", 1, "parallel inference sessions, each on its own frame (order is kept)", min=1, max=64),
        Param("confidence", 0.3, "minimum score", min=0.0, max=1.0),
        Param("iou", 0.45, "NMS IoU threshold", min=0.0, max=1.0),
        Param("max_detections", 300, "per frame", min=1, max=10000),
        Param("classes", [""], "keep only these class names (empty = all)"),
        *QOS,
    ),
    "tracker": _params(
        Param("tracker", "bytetrack", "tracker plugin (edge_vision.trackers)"),
        Param("track_thresh", 0.5, "detections above this start/extend tracks first", min=0.0, max=1.0),
        Param("low_thresh", 0.1, "low-score detections above this only extend tracks", min=0.0, max=1.0),
        Param("new_track_thresh", 0.6, "minimum score to start a new track", min=0.0, max=1.0),
        Param("match_thresh", 0.8, "IoU-distance gate for association", min=0.0, max=1.0),
        Param("track_buffer", 30, "source frames a lost track is kept", min=1, max=100000),
        Param("frame_rate", 0.0, "nominal source fps to derive frame gaps from stamps (0 = from source)", min=0.0),
        *QOS,
    ),
    "events": _params(
        Param("rule_names", [""], "names of the rules under rules.<name>.*"),
        Param("jsonl_path", "", "append events to this JSONL file (empty = off)"),
        *QOS,
    ),
    "visualizer": _params(
        Param("video_path", "", "write the annotated video to this MP4 (empty = off)"),
        Param("video_fps", 0.0, "fps of the written video (0 = source fps)", min=0.0),
        *QOS,
    ),
    "pipeline": _params(
        Param("queue_size", 4, "frames buffered between composed stages", min=1, max=1000),
        Param("drop_when_full", False, "drop the oldest frame when a stage lags (live) instead of waiting (files)"),
        Param("stats_period", 1.0, "seconds between PipelineStats messages", min=0.05),
    ),
}

RULE_PARAMS = _params(
    Param("type", "line", "rule plugin (edge_vision.rules)"),
    Param("classes", [""], "class names the rule applies to (empty = all)"),
    Param("anchor", "bottom_center", "box point tested", choices=("bottom_center", "center")),
    Param("start", [0.0, 0.0], "line start [x, y] (line rules)"),
    Param("end", [0.0, 0.0], "line end [x, y] (line rules)"),
    Param("polygon", [0.0], "zone polygon [x1, y1, x2, y2, ...] (zone rules)"),
    Param("min_frames", 1, "frames on the new side (line) or inside/outside (zone) before it counts", min=1),
    Param("forget_after_frames", 300, "source frames after which an unseen track is forgotten", min=1),
    Param("exit_on_lost", False, "zones: emit zone_exit when a track inside is forgotten"),
    Param("min_distance", 2.0, "line hysteresis: pixels past the line before a side counts", min=0.0),
)


def clean_list(value: ParamValue) -> ParamValue:
    # ROS parameters cannot be empty typed lists, so [""] / [0.0] placeholders mean "empty".
    if isinstance(value, list) and value in ([""], [0.0]):
        return []
    return value


def resolve(section: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``section`` overlaid with ``overrides``, validated; unknown keys are errors."""
    if section not in SCHEMA:
        raise ConfigError(f"unknown config section {section!r}; expected one of {sorted(SCHEMA)}")
    schema = SCHEMA[section]
    values = dict(overrides or {})
    extra = sorted(k for k in values if k not in schema and not (section == "events" and k == "rules"))
    if extra:
        raise ConfigError(f"unknown parameter(s) {section}.{', '.join(extra)}; known: {sorted(schema)}")
    result: dict[str, Any] = {
        name: clean_list(param.validate(section, values.get(name, param.default))) for name, param in schema.items()
    }
    if section == "events":
        result["rules"] = resolve_rules(result["rule_names"], values.get("rules", {}))
    return result


def resolve_rules(names: Sequence[str], rules: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(rules, Mapping):
        raise ConfigError(f"events.rules must be a mapping of rule name to parameters, got {rules!r}")
    missing = [n for n in names if n not in rules]
    if missing:
        raise ConfigError(f"events.rule_names lists {missing} but events.rules has no entry for them")
    resolved = {}
    for name in names:
        spec = rules[name]
        if not isinstance(spec, Mapping):
            raise ConfigError(f"events.rules.{name} must be a mapping, got {spec!r}")
        extra = sorted(k for k in spec if k not in RULE_PARAMS)
        if extra:
            raise ConfigError(
                f"unknown parameter(s) events.rules.{name}.{', '.join(extra)}; known: {sorted(RULE_PARAMS)}"
            )
        resolved[name] = {
            key: clean_list(RULE_PARAMS[key].validate(f"events.rules.{name}", value)) for key, value in spec.items()
        }
        resolved[name].setdefault("type", "line")
    return resolved


def load_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS-style parameter YAML into ``{section: validated values}`` for every known section."""
    import yaml

    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_path} must hold a mapping of node names, got {type(raw).__name__}")
    unknown = sorted(k for k in raw if k not in SCHEMA)
    if unknown:
        raise ConfigError(f"config file {config_path}: unknown section(s) {unknown}; expected {sorted(SCHEMA)}")
    sections: dict[str, dict[str, Any]] = {}
    for section in SCHEMA:
        body = raw.get(section) or {}
        if isinstance(body, dict) and "ros__parameters" in body:
            body = body["ros__parameters"] or {}
        if not isinstance(body, dict):
            raise ConfigError(f"config file {config_path}: section {section!r} must be a mapping")
        try:
            sections[section] = resolve(section, body)
        except ConfigError as exc:
            raise ConfigError(f"config file {config_path}: {exc}") from exc
    return sections


def ros_value(param: Param, value: Any) -> Any:
    """ROS parameters cannot hold an untyped empty list: use the typed placeholder default instead."""
    return param.default if value == [] else value


def to_ros_parameters(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of ``load_file``: a ROS parameter-file mapping (``{node: {ros__parameters: ...}}``)."""
    document: dict[str, Any] = {}
    for section, values in sections.items():
        schema = SCHEMA[section]
        body: dict[str, Any] = {k: ros_value(schema[k], v) for k, v in values.items() if k in schema}
        if section == "events":
            body["rules"] = {
                name: {k: ros_value(RULE_PARAMS[k], v) for k, v in spec.items()}
                for name, spec in values.get("rules", {}).items()
            }
        document[section] = {"ros__parameters": body}
    return document


def write_ros_parameters(sections: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    import yaml

    out = Path(path)
    out.write_text(yaml.safe_dump(to_ros_parameters(sections), sort_keys=False), encoding="utf-8")
    return out
