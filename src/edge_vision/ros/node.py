"""``SectionNode``: one ROS node per config section (camera, detector, tracker, events, visualizer,
pipeline). It declares the section's schema and its plugins' schemas as ROS parameters (descriptions, ranges)
and validates them with the core (``config.resolve``): errors name ``section.parameter``.

A node holds parameters and ports only; the work is done by the core graph, whether the node runs alone or
composed with the others in one process: a node does not know which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from edge_vision.core import config, plugins, secrets
from edge_vision.core.errors import ConfigError, EdgeVisionError


def descriptor(param: config.Param | None, read_only: bool = True) -> ParameterDescriptor:
    if param is None:
        return ParameterDescriptor(read_only=read_only)
    result = ParameterDescriptor(description=param.description, read_only=read_only)
    if param.min is not None and param.max is not None:
        if isinstance(param.default, float):
            result.floating_point_range = [FloatingPointRange(from_value=param.min, to_value=param.max, step=0.0)]
        elif isinstance(param.default, int) and not isinstance(param.default, bool):
            result.integer_range = [IntegerRange(from_value=int(param.min), to_value=int(param.max), step=1)]
    if param.choices:
        result.additional_constraints = f"one of {list(param.choices)}"
    return result


def _all_heads() -> set[str]:
    """Every top-level parameter name of every section and installed plugin."""
    heads: set[str] = set()
    for section, schema in config.SCHEMA.items():
        heads |= set(schema) | set(config.INSTANCE_KEYS.get(section, {}))
    for kind, _selector in config.PLUGIN_SECTIONS.values():
        for name in plugins.available(kind):
            try:
                heads |= set(plugins.schema(plugins.load(kind, name)))
            except EdgeVisionError:
                continue
    return heads


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{rules: {door: {type: zone}}}`` -> ``{"rules.door.type": "zone"}`` (ROS parameter names)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        here = nested
        for part in parents:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                raise ConfigError(f"parameter {name}: {part} is both a value and a group")
        here[leaf] = value
    return nested


class SectionNode(Node):
    """``values``: section values given in-process (they win over a parameter file's)."""

    def __init__(self, section: str, *, values: Mapping[str, Any] | None = None, **node_kwargs: Any) -> None:
        node_kwargs.setdefault("node_name", section)
        super().__init__(**node_kwargs)
        self.section = section
        # Parameters from --params-file / launch for this node, before any is declared. rclpy keeps them in
        # ``_parameter_overrides``; reading them is how nested plugin instances (rules.<name>.*) are discovered
        # without asking the user to list every name twice.
        given = {name: p.value for name, p in self._parameter_overrides.items() if name != "use_sim_time"}
        # A parameter file's ``/**:`` keys and a launch file's parameter dicts reach every node of a process:
        # what another section owns is not an error here (``config.load_file`` is strict about files).
        ignored = sorted(name for name in given if not self._knows(name.partition(".")[0], given))
        unknown = [name for name in ignored if name.partition(".")[0] not in _all_heads()]
        if unknown:  # no section knows them: most likely a typo
            self.get_logger().warning(f"ignoring unknown parameter(s) {unknown}: no edge_vision section has them")
        given = {name: value for name, value in given.items() if name not in ignored}
        given.update(flatten(self._ros_form(values or {})))
        self.values: dict[str, Any] = config.resolve(section, unflatten(given))
        # Called with (section, new values) for a live parameter change; raising EdgeVisionError rejects it.
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None
        self._declared = False
        self.add_on_set_parameters_callback(self._on_set)
        self._declare_all()
        self._declared = True

    def _knows(self, head: str, given: Mapping[str, Any]) -> bool:
        """Whether ``head`` (the first part of a parameter name) belongs to this section: its schema, its
        plugin instances, its plugin's parameters, or (camera) a per-camera group."""
        section = self.section
        if head in config.SCHEMA[section] or head in config.INSTANCE_KEYS.get(section, {}):
            return True
        if section in config.PLUGIN_SECTIONS:
            kind, selector = config.PLUGIN_SECTIONS[section]
            plugin = given.get(selector, config.SCHEMA[section][selector].default)
            try:
                if head in plugins.schema(plugins.load(kind, str(plugin))):
                    return True
            except EdgeVisionError:
                return True  # an unknown plugin: let resolve() name it
        return section == "camera" and any(name.startswith(f"{head}.") for name in given)

    def _ros_form(self, values: Mapping[str, Any]) -> dict[str, Any]:
        document = config.to_ros_parameters({self.section: values})
        body: dict[str, Any] = document[f"/**/{self.section}"]["ros__parameters"]
        return body

    def _declare_all(self) -> None:
        schema = config.SCHEMA[self.section]
        body = self._ros_form(self.values)
        for name, value in flatten(body).items():
            head, _, rest = name.partition(".")
            param: config.Param | None = schema.get(head)
            if param is None and not rest and self.section in config.PLUGIN_SECTIONS:
                kind, selector = config.PLUGIN_SECTIONS[self.section]
                param = plugins.schema(plugins.load(kind, self.values[selector])).get(head)
            elif param is None and head in config.INSTANCE_KEYS.get(self.section, {}):
                instance, _, key = rest.partition(".")
                spec = self.values[head].get(instance, {})
                kind = config.INSTANCE_KEYS[self.section][head]
                if key != "type" and spec:
                    param = plugins.schema(plugins.load(kind, spec["type"])).get(key)
            shown = secrets.redact_value(name, value)
            if shown != value:
                # Read back (ros2 param get, /<node>/get_parameters, /parameter_events) by any process on the
                # domain: the parameter holds the redacted value, the pipeline the real one (``self.values``).
                # A value from --params-file wins over the declared default, so it is replaced too.
                self._parameter_overrides[name] = Parameter(name, value=shown)
                value = shown
            try:
                live = config.is_live(self.section, name, self.values)
                self.declare_parameter(name, value, descriptor(param, read_only=not live))
            except Exception as exc:  # rclpy's InvalidParameterValueException and friends
                raise ConfigError(f"{self.section}.{name}: {exc}") from exc

    def _on_set(self, changes: list[Parameter]) -> SetParametersResult:
        """``ros2 param set``: validated by the core schema and by the pipeline (rules and trackers are built
        from the new values) before anything changes; rejected with the reason otherwise."""
        if not self._declared:
            return SetParametersResult(successful=True)
        flat = flatten(self._ros_form(self.values))
        for change in changes:
            flat[change.name] = change.value
        try:
            values = config.resolve(self.section, unflatten(flat))
            if self.on_change is not None:
                self.on_change(self.section, values)
        except EdgeVisionError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.values = values
        names = ", ".join(f"{c.name}={c.value!r}" for c in changes)
        self.get_logger().info(f"parameters changed: {names}")
        return SetParametersResult(successful=True)

    def qos(self) -> QoSProfile:
        """QoS of the node's output topics."""
        return _profile(self.values["qos_reliability"], self.values["qos_depth"])

    def input_qos(self) -> QoSProfile:
        """QoS of the node's input topics (sensor data, best effort, by default for images)."""
        return _profile(self.values["input_reliability"], self.values["input_depth"])


def _profile(reliability: str, depth: int) -> QoSProfile:
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


Transition = Callable[[], bool]


class ManagedSectionNode(LifecycleNodeMixin, SectionNode):
    """The section node that owns a process's pipeline, as a lifecycle (managed) node: configure loads the
    model and opens the sources, activate starts decoding and publishing, deactivate pauses, cleanup releases.
    ``transitions`` maps a transition name to the pipeline's handler (True = success)."""

    def __init__(self, section: str, *, values: Mapping[str, Any] | None = None, **node_kwargs: Any) -> None:
        SectionNode.__init__(self, section, values=values, **node_kwargs)
        LifecycleNodeMixin.__init__(self, enable_communication_interface=True)
        self.transitions: dict[str, Transition] = {}

    def _run(self, name: str) -> TransitionCallbackReturn:
        handler = self.transitions.get(name)
        ok = True if handler is None else handler()
        return TransitionCallbackReturn.SUCCESS if ok else TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("configure")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("activate")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("deactivate")

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("cleanup")

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("shutdown")
