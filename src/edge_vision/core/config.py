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
# ``detector.model``: a roll-out (validated, then on probation, rolled back on errors; see runtime/rollout.py).
LIVE = {"detector": ("model", "confidence", "iou", "max_detections", "classes"), "events": ("rules",)}


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
        Param("probation_s", 60.0, "model roll-out: seconds a newly installed model is watched", min=0.0),
        Param("rollback_max_errors", 0, "model roll-out: inference errors in probation before rollback", min=0),
        Param(
            "rollback_latency_ratio",
            2.0,
            "model roll-out: roll back when the new model's median inference time exceeds this x the old one's",
            min=1.0,
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
        Param(
            "segment_s",
            0.0,
            "split the video into files of this many seconds, named after their start time (0 = one file)",
            min=0.0,
        ),
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
        # Unattended operation (issue 9): graceful stop and storage (core/storage.py).
        Param(
            "stop_timeout_s",
            10.0,
            "on SIGTERM/SIGINT or end of input: seconds to drain queued frames before what is left is abandoned",
            min=0.0,
        ),
        Param(
            "on_storage_error",
            "degrade",
            "an output write fails (disk full, read-only, quota): degrade = report it and go on without that "
            "output; stop = stop cleanly, exit code 1",
            choices=("degrade", "stop"),
        ),
        Param("storage_quota_mb", 0.0, "recordings (video files) may use this much of their folder; 0 = none", min=0),
        Param(
            "storage_min_free_mb",
            0.0,
            "delete the oldest recordings while the output file system has less free space (0 = off); WARN below 2x",
            min=0.0,
        ),
        Param("storage_check_s", 5.0, "seconds between storage guard checks (a timer, never per frame)", min=0.1),
        # Watchdogs, resource guards, metrics (issue 9, core/ops).
        Param("watchdog_s", 30.0, "a stage stuck on one frame this long: ERROR on /diagnostics (0 = off)", min=0.0),
        Param(
            "watchdog_action",
            "report",
            "a stuck stage: report it, or also exit with code 4 so systemd/docker restarts the process",
            choices=("report", "exit"),
        ),
        Param(
            "memory_limit_mb",
            0,
            "resident memory ceiling (0 = off): above 90 % frames are shed; above it the process stops, exit code 3",
            min=0,
        ),
        Param("thermal_path", "/sys/class/thermal", "folder of thermal_zone*/temp (and tegrastats where installed)"),
        Param("thermal_warn_c", 85.0, "hottest zone above this (C): shed frames, not overheat (0 = off)", min=0.0),
        Param("thermal_hysteresis_c", 5.0, "shedding eases once the hottest zone is this far below it", min=0.0),
        Param(
            "max_lag_s",
            0.0,
            "frame age at the detector above this: drop the queued frames but the newest (0 = off; live cameras)",
            min=0.0,
        ),
        Param("shed_max", 8, "load shedding (memory, thermal) passes at least 1 of this many frames", min=1, max=1000),
        Param("guard_period_s", 2.0, "seconds between memory and thermal checks (one shedding step each)", min=0.05),
        Param("metrics_port", 0, "Prometheus /metrics and /healthz on this port (0 = off)", min=0, max=65535),
        Param("metrics_host", "127.0.0.1", "address the metrics endpoint binds to (0.0.0.0: every interface)"),
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


def load_yaml(text: str, where: str) -> Any:
    """YAML text -> Python (safe types only), refusing a key given twice in one mapping: PyYAML silently keeps
    the last one, so a second ``confidence:`` lower in a section used to win unseen. ConfigError names the key
    and both lines. ``<<`` merge keys may still override what they merge in."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        first: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    raise ConfigError(
                        f"{where}: key {key!r} appears twice in one mapping (line {line}, first on line "
                        f"{first[key]}); YAML would keep only the last: remove one"
                    )
                first[key] = line
            except TypeError:  # an unhashable key: the SafeLoader says so below
                break
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: safe types only


def read_layer(path: str | Path) -> dict[str, dict[str, Any]]:
    """One parameter YAML as ``{section: raw values}`` (not yet resolved: a layer may set a few keys only).

    Keys may be plain node names (``camera:``) or ROS wildcards (``/**/camera:``), so one file works under any
    namespace; each section may hold its values under ``ros__parameters`` or directly."""
    import yaml

    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    try:
        raw = load_yaml(config_path.read_text(encoding="utf-8"), f"config file {config_path}") or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_path} must hold a mapping of node names, got {type(raw).__name__}")
    try:
        return _bodies(raw)
    except ConfigError as exc:
        raise ConfigError(f"config file {config_path}: {exc}") from exc


def _merge(base: dict[str, Any], layer: Mapping[str, Any], origin: dict[str, str], where: str, name: str) -> None:
    """Deep-merge ``layer`` into ``base`` as ROS merges parameter files: a mapping (rule instances, per-camera
    overrides) merges key by key, anything else (numbers, strings, lists) is replaced whole."""
    for key, value in layer.items():
        dotted = f"{where}.{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, dotted, name)
        else:
            base[key] = _copy(value)
            for known in [k for k in origin if k == dotted or k.startswith(dotted + ".")]:
                del origin[known]
            _record(origin, dotted, value, name)


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _record(origin: dict[str, str], dotted: str, value: Any, name: str) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _record(origin, f"{dotted}.{key}", inner, name)
    else:
        origin[dotted] = name


def merge_layers(paths: Sequence[str | Path]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Layered configuration (fleet defaults, then site, then device...): each file read, then deep-merged in
    order, later files winning. Returns the merged raw sections and, for every dotted key set by some file, the
    file that set it last (``edge-vision config show --origin``).

    Layers are validated merged, not one by one: a device file may set ``detector.hint`` (an OpenVINO
    parameter) while the fleet file chooses ``detector.backend: openvino``."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for path in paths:
        for section, body in read_layer(path).items():
            _merge(merged.setdefault(section, {}), body, origin, section, str(path))
    return merged, origin


def load_files(paths: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """Every section resolved from one or more layered parameter files (see ``merge_layers``); an error names
    the file that set the offending parameter."""
    if not paths:
        raise ConfigError("no config file given")
    merged, origin = merge_layers(paths)
    try:
        return resolve_all(merged)
    except ConfigError as exc:
        text = str(exc)
        named = [key for key in origin if key in text]
        if len(paths) == 1:
            where = str(paths[0])
        elif named:
            where = origin[max(named, key=len)]
        else:
            where = "merged " + " + ".join(str(p) for p in paths)
        raise ConfigError(f"config file {where}: {text}") from exc


def load_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS-style parameter YAML into ``{section: validated values}`` for every known section."""
    return load_files([path])


def _bodies(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{section or /**/section: {ros__parameters: {...}}}`` -> ``{section: {...}}``."""
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
    return bodies


def resolve_all(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every section resolved from a document ``{section or /**/section: {ros__parameters: {...}}}``."""
    bodies = _bodies(raw)
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
