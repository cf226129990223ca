"""Parameter schema: one declaration per parameter, used by the ROS nodes (declared ROS parameters with
descriptors and ranges) and by ``edge-vision run`` (plain YAML). Validation errors name the parameter.

The YAML format is the ROS 2 parameter-file format, so one file serves ``ros2 launch`` and ``edge-vision``:

    detector:
      ros__parameters:
        confidence: 0.3
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping
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
            if not isinstance(value, (list, tuple, array.array)):  # rclpy hands double arrays as array.array
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
    Param("autostart", True, "configure and activate at start; false: a managed node driven by ros2 lifecycle"),
)


def _inputs(reliability: str, image: bool = False) -> tuple[Param, ...]:
    """QoS of a stage's input topics, apart from its outputs: camera drivers publish images best-effort
    (sensor data), which a reliable subscription would never match."""
    params: tuple[Param, ...] = (
        Param("input_reliability", reliability, "QoS of the input topics", choices=("reliable", "best_effort")),
        Param("input_depth", 5, "QoS history depth of the input topics", min=1, max=1000),
    )
    if image:
        params += (
            Param(
                "image_transport",
                "raw",
                "input images as sensor_msgs/Image (raw) or CompressedImage "
                "(compressed: <topic>/compressed, JPEG or PNG)",
                choices=("raw", "compressed"),
            ),
        )
    return params


# Sections whose plugin's own parameters sit beside the section's: section -> (plugin kind, selecting key).
PLUGIN_SECTIONS = {
    "camera": ("sources", "source"),
    "detector": ("backends", "backend"),
    "tracker": ("trackers", "tracker"),
}
# Sections holding named plugin instances: section -> {key: plugin kind}.
# The visualizer's ``rules`` are what a standalone visualizer draws (composed, it draws the events stage's own);
# ``to_ros_parameters`` copies events.rules there when it is empty.
INSTANCE_KEYS = {"events": {"rules": "rules", "actions": "actions"}, "visualizer": {"rules": "rules"}}
STAGES = ("source", "detect", "track", "events", "annotate")
# Parameters that may change while running (``ros2 param set``), taking effect on the next frame; every other
# parameter is fixed for the life of the node. The tracker's own plugin parameters are all live.
LIVE = {"detector": ("confidence", "iou", "max_detections", "classes"), "events": ("rules",)}


def is_live(section: str, name: str, resolved: Mapping[str, Any]) -> bool:
    """Whether the ROS parameter ``name`` (dotted, e.g. ``rules.door.polygon``) of ``section`` is live."""
    head, _, rest = name.partition(".")
    if section == "tracker":
        return head in plugin_keys(section, resolved)
    if section == "events" and head == "rules":
        return bool(rest) and not rest.endswith(".type")
    return head in LIVE.get(section, ())

SCHEMA: dict[str, dict[str, Param]] = {
    "camera": _params(
        Param("source", "file", "source plugin (entry-point group edge_vision.sources)"),
        Param("camera_id", "camera", "frame_id stamped on every image and result"),
        Param("wait_for_subscribers", 0, "standalone: hold the first frame until this many subscribers match", min=0),
        *QOS,
    ),
    "detector": _params(
        Param("model", "", "ONNX model path; empty = the bundled YOLOX-nano"),
        Param("labels", "", "class-name file, one per line; empty = from the model, or COCO for the default"),
        Param("backend", "onnxruntime", "inference backend plugin (edge_vision.backends)"),
        Param("adapter", "auto", "model adapter plugin (edge_vision.model_adapters); auto = by output shape"),
        Param("workers", 1, "parallel inference sessions, each on its own frame (order is kept)", min=1, max=64),
        Param("confidence", 0.3, "minimum score", min=0.0, max=1.0),
        Param("iou", 0.45, "NMS IoU threshold", min=0.0, max=1.0),
        Param("max_detections", 300, "per frame", min=1, max=10000),
        Param("classes", [""], "keep only these class names (empty = all)"),
        Param(
            "class_id",
            "name",
            "Detection2D class_id: the class name (vision_msgs' advice) or its index",
            choices=("name", "index"),
        ),
        *QOS,
        *_inputs("best_effort", image=True),
    ),
    "tracker": _params(
        Param("tracker", "bytetrack", "tracker plugin (edge_vision.trackers)"),
        *QOS,
        *_inputs("reliable"),
    ),
    "events": _params(
        Param("rule_names", [""], "optional: the rules to run, in order (empty = every rule under events.rules)"),
        Param("output_dir", "", "folder for relative action paths (empty = the current folder)"),
        *QOS,
        *_inputs("reliable"),
    ),
    "visualizer": _params(
        Param("video_path", "", "write the annotated video to this MP4 (empty = off)"),
        Param("video_fps", 0.0, "fps of the written video (0 = the rate of the frames it holds)", min=0.0),
        *QOS,
        *_inputs("best_effort", image=True),
    ),
    "pipeline": _params(
        Param("cameras", [""], "camera names (topic namespaces); empty = one camera at the node's namespace"),
        Param("device_id", "", "this device's identity in every event, metric and diagnostic (empty = host name)"),
        Param("queue_size", 4, "frames buffered in front of each threaded stage", min=1, max=1000),
        Param(
            "policy",
            "block",
            "when the detector lags: block the source (files), or drop the oldest / newest frame (live)",
            choices=("block", "drop_oldest", "drop_newest"),
        ),
        Param("error_budget", 10, "consecutive failures of one stage before the pipeline fails", min=1),
        Param("stats_period", 1.0, "seconds between PipelineStats / diagnostics messages", min=0.05),
        Param("external", [""], "composed: stages left to other processes, their input taken from topics"),
        Param("autostart", True, "configure and activate at start; false: a managed node driven by ros2 lifecycle"),
        Param("foxglove", False, "serve a Foxglove WebSocket view (image, annotations, tracks, events, stats)"),
        Param("foxglove_host", "127.0.0.1", "address the Foxglove view binds to (0.0.0.0: every interface)"),
        Param("foxglove_port", 8765, "port of the Foxglove view (0 = any free port)", min=0, max=65535),
        Param("foxglove_image", "jpeg", "image sent to Foxglove: jpeg (small) or raw (bgr8)", choices=("jpeg", "raw")),
        Param("foxglove_wait", 0.0, "seconds to wait for a Foxglove client before the first frame", min=0.0),
    ),
}


def device_id(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """``pipeline.device_id``, or the host name when it is empty (fleet tooling tells devices apart by it)."""
    import socket

    return str(sections["pipeline"].get("device_id") or socket.gethostname())


def clean_list(value: ParamValue) -> ParamValue:
    # ROS parameters cannot be empty typed lists, so [""] / [0.0] placeholders mean "empty".
    if isinstance(value, list) and value in ([""], [0.0]):
        return []
    return value


def _plugins() -> Any:
    from edge_vision.core import plugins  # plugins imports Param from here: import at use

    return plugins


def instances(section: str, key: str, raw: Any) -> dict[str, dict[str, Any]]:
    """Named plugin instances from a mapping ``{name: {type: ..., ...}}`` (the ROS parameter-file form) or a
    list ``[{name: ..., type: ..., ...}]`` (name defaults to the type, then ``type_2``...)."""
    where = f"{section}.{key}"
    if raw in (None, {}, [], ""):
        return {}
    if isinstance(raw, list):
        named: dict[str, Any] = {}
        for index, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise ConfigError(f"{where}[{index}] must be a mapping with a type, got {item!r}")
            item = dict(item)
            name = str(item.pop("name", "") or item.get("type", ""))
            if not name:
                raise ConfigError(f"{where}[{index}] needs a type")
            if name in named:
                name = f"{name}_{index + 1}"
            named[name] = item
        raw = named
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a list or a mapping of name to parameters, got {raw!r}")
    kind = INSTANCE_KEYS[section][key]
    result: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}.{name} must be a mapping of parameters, got {spec!r}")
        spec = dict(spec)
        plugin = spec.pop("type", "")
        if not isinstance(plugin, str) or not plugin:
            raise ConfigError(f"{where}.{name}.type is missing: one of {_plugins().available(kind)}")
        values = _plugins().validate(kind, plugin, spec, f"{where}.{name}")
        result[str(name)] = {"type": plugin, **values}
    return result


def resolve(section: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``section`` (and of the plugin it selects) overlaid with ``overrides``, validated;
    unknown keys are errors naming ``section.key``."""
    if section not in SCHEMA:
        raise ConfigError(f"unknown config section {section!r}; expected one of {sorted(SCHEMA)}")
    schema = SCHEMA[section]
    values = dict(overrides or {})
    result: dict[str, Any] = {
        name: clean_list(param.validate(section, values.pop(name, param.default))) for name, param in schema.items()
    }
    for key in INSTANCE_KEYS.get(section, {}):
        result[key] = instances(section, key, values.pop(key, None))
    if section == "events":
        _check_rule_names(result)
    if section == "camera":
        result["cameras"] = {k: values.pop(k) for k in list(values) if isinstance(values[k], Mapping)}
    if section in PLUGIN_SECTIONS:
        kind, selector = PLUGIN_SECTIONS[section]
        plugin_schema = _plugins().schema(_plugins().load(kind, result[selector]))
        mine = {k: values.pop(k) for k in list(values) if k in plugin_schema}
        if not values:
            result.update(_plugins().validate(kind, result[selector], mine, section))
    if values:
        known = sorted(set(schema) | set(INSTANCE_KEYS.get(section, {})) | set(plugin_keys(section, result)))
        raise ConfigError(f"unknown parameter(s) {', '.join(f'{section}.{k}' for k in sorted(values))}; known: {known}")
    return result


def plugin_keys(section: str, resolved: Mapping[str, Any]) -> list[str]:
    if section not in PLUGIN_SECTIONS:
        return []
    kind, selector = PLUGIN_SECTIONS[section]
    return list(_plugins().schema(_plugins().load(kind, resolved[selector])))


def _check_rule_names(events: dict[str, Any]) -> None:
    names, rules = events["rule_names"], events["rules"]
    missing = [n for n in names if n not in rules]
    if missing:
        raise ConfigError(f"events.rule_names lists {missing} but events.rules has no entry for them")
    if names:
        unlisted = [n for n in rules if n not in names]
        if unlisted:
            raise ConfigError(
                f"events.rules.{unlisted[0]} is defined but not listed in events.rule_names {names}: "
                "list it, delete it, or leave rule_names empty to run every rule"
            )
        events["rules"] = {n: rules[n] for n in names}


def camera_sections(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """One resolved camera section per camera of ``pipeline.cameras`` (name -> values): the camera section's
    values overlaid with its per-camera mapping (``camera: {front: {uri: ...}}``). No cameras listed: one
    camera named "" (topics at the node's namespace)."""
    camera = dict(sections["camera"])
    per_camera: dict[str, Any] = camera.pop("cameras", {})
    names: list[str] = list(sections["pipeline"]["cameras"]) or [""]
    unknown = sorted(set(per_camera) - set(names))
    if unknown:
        raise ConfigError(f"camera.{unknown[0]} configures a camera not listed in pipeline.cameras {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"pipeline.cameras lists a name twice: {names}")
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        overrides = dict(per_camera.get(name, {}))
        merged = {
            k: v for k, v in camera.items() if k not in plugin_keys("camera", camera) or "source" not in overrides
        }
        merged.update(overrides)
        if name and "camera_id" not in overrides:
            merged["camera_id"] = name
        try:
            result[name] = resolve("camera", merged)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("camera.", f"camera.{name}.", 1) if name else str(exc)) from exc
        result[name].pop("cameras")
    return result


def load_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS-style parameter YAML into ``{section: validated values}`` for every known section.

    Keys may be plain node names (``camera:``) or ROS wildcards (``/**/camera:``), so one file works under any
    namespace; each section may hold its values under ``ros__parameters`` or directly."""
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
    try:
        return resolve_all(raw)
    except ConfigError as exc:
        raise ConfigError(f"config file {config_path}: {exc}") from exc


def resolve_all(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every section resolved from a document ``{section or /**/section: {ros__parameters: {...}}}``."""
    bodies: dict[str, Any] = {}
    for key, body in raw.items():
        section = str(key).removeprefix("/**/").strip("/")
        if section not in SCHEMA:
            raise ConfigError(f"unknown section {key!r}; expected {sorted(SCHEMA)}")
        if isinstance(body, dict) and "ros__parameters" in body:
            body = body["ros__parameters"] or {}
        if not isinstance(body, dict):
            raise ConfigError(f"section {key!r} must be a mapping")
        bodies[section] = body
    sections = {section: resolve(section, bodies.get(section) or {}) for section in SCHEMA}
    camera_sections(sections)  # per-camera overrides are checked now, not when a camera starts
    return sections


def check_cross(sections: Mapping[str, Mapping[str, Any]]) -> None:
    external = sections["pipeline"]["external"]
    bad = [s for s in external if s not in STAGES]
    if bad:
        raise ConfigError(f"pipeline.external names unknown stage(s) {bad}; stages are {list(STAGES)}")


def ros_value(param: Param, value: Any) -> Any:
    """ROS parameters cannot hold an untyped empty list: use the typed placeholder default instead."""
    return param.default if value == [] else value


def to_ros_parameters(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of ``load_file``: a ROS parameter-file mapping (``{/**/node: {ros__parameters: ...}}``),
    valid under any namespace."""
    document: dict[str, Any] = {}
    for section, given in sections.items():
        schema = SCHEMA[section]
        values = dict(given)
        if section == "visualizer" and not values.get("rules") and "events" in sections:
            values["rules"] = sections["events"]["rules"]
        body: dict[str, Any] = {}
        for key, value in values.items():
            if key in INSTANCE_KEYS.get(section, {}):
                body[key] = {name: {k: _ros_plain(v) for k, v in spec.items()} for name, spec in value.items()}
            elif key == "cameras" and section == "camera":
                body.update({name: {k: _ros_plain(v) for k, v in spec.items()} for name, spec in value.items()})
            else:
                body[key] = ros_value(schema[key], value) if key in schema else _ros_plain(value)
        document[f"/**/{section}"] = {"ros__parameters": body}
    return document


def _ros_plain(value: Any) -> Any:
    """Plugin parameters: an empty list becomes the typed placeholder ROS needs."""
    return [""] if value == [] else value


def write_ros_parameters(sections: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    import yaml

    class NoAliases(yaml.SafeDumper):
        # rcl's parser refuses YAML aliases ("Will not support aliasing"): the visualizer's copy of the rules
        # must be written out in full, not as *id001.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    out = Path(path)
    text = yaml.dump(to_ros_parameters(sections), Dumper=NoAliases, sort_keys=False)
    out.write_text(text, encoding="utf-8")
    return out
