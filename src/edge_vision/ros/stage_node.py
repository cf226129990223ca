"""``StageNode``: the base of every edge_vision node.

A node declares its parameters from the core schema, and talks through ``Output`` ports. Standalone, a port
is a ROS publisher and inputs are ROS subscriptions. Composed (``container``), the container wires ports
straight to the next node's handler through ``LocalLink`` queues: the packet object itself is handed over,
no message is built, and a DDS message is published only while some other node subscribes to the topic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future

from edge_vision.core import config
from edge_vision.core.errors import ConfigError
from edge_vision.core.stats import PipelineStatistics

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Inlet(Protocol[T_contra]):
    """Where a composed output delivers: a LocalLink or a ParallelStage."""

    def put(self, item: T_contra) -> None: ...


class Output(Generic[T]):
    """A node's output topic, with zero-copy local subscribers in composed mode."""

    def __init__(self, node: Node, topic: str, msg_type: Any, to_msg: Callable[[T], Any], qos: QoSProfile) -> None:
        self.topic = topic
        self.publisher = node.create_publisher(msg_type, topic, qos)
        self.to_msg = to_msg
        self.links: list[Inlet[T]] = []
        self.taps: list[Callable[[T], None]] = []  # synchronous in-process observers (recorders, tests)
        self.published = 0

    def connect(self, link: Inlet[T]) -> None:
        self.links.append(link)

    @property
    def has_ros_subscribers(self) -> bool:
        return bool(self.publisher.get_subscription_count())

    def emit(self, item: T) -> None:
        for tap in self.taps:
            tap(item)
        # Build the message only when someone listens: conversion is most of the cost of a large Image.
        if self.has_ros_subscribers:
            self.publisher.publish(self.to_msg(item))
            self.published += 1
        for link in self.links:
            link.put(item)


def _descriptor(param: config.Param) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=param.description)
    if param.min is not None and param.max is not None:
        if isinstance(param.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=param.min, to_value=param.max, step=0.0)]
        elif isinstance(param.default, int) and not isinstance(param.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(param.min), to_value=int(param.max), step=1)]
    if param.choices:
        descriptor.additional_constraints = f"one of {list(param.choices)}"
    return descriptor


class StageNode(Node):
    section: ClassVar[str]

    def __init__(
        self,
        *,
        composed: bool = False,
        values: dict[str, Any] | None = None,
        statistics: PipelineStatistics | None = None,
        **node_kwargs: Any,
    ) -> None:
        node_kwargs.setdefault("node_name", self.section)
        super().__init__(**node_kwargs)
        self.composed = composed
        self.params = self._declare_parameters(values or {})
        self.statistics = statistics or PipelineStatistics()
        self.done: Future = Future()  # completed when a standalone node has nothing more to do (end of a file)

    def _declare_parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """Declare the section's schema as ROS parameters (launch files and ``ros2 param`` see ranges and
        descriptions), read them back, and validate them with the core schema."""
        declared: dict[str, Any] = {}
        schema = config.SCHEMA[self.section]
        for name, param in schema.items():
            declared[name] = self._declare(name, param, values.get(name, param.default))
        if self.section == "events":
            rules: dict[str, dict[str, Any]] = {}
            given = values.get("rules", {})
            rule_names: list[str] = config.clean_list(declared["rule_names"])  # type: ignore[assignment]
            for rule_name in rule_names:
                spec = given.get(rule_name, {})
                rules[rule_name] = {
                    key: self._declare(f"rules.{rule_name}.{key}", param, spec.get(key, param.default))
                    for key, param in config.RULE_PARAMS.items()
                }
            declared["rules"] = rules
        return config.resolve(self.section, declared)

    def _declare(self, name: str, param: config.Param, value: Any) -> Any:
        try:
            return self.declare_parameter(name, config.ros_value(param, value), _descriptor(param)).value
        except Exception as exc:  # rclpy's InvalidParameterValueException and friends
            raise ConfigError(f"{self.section}.{name}: {exc}") from exc

    def qos(self) -> QoSProfile:
        reliability = (
            ReliabilityPolicy.RELIABLE
            if self.params["qos_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT
        )
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.params["qos_depth"], reliability=reliability)

    def output(self, topic: str, msg_type: Any, to_msg: Callable[[T], Any]) -> Output[T]:
        return Output(self, topic, msg_type, to_msg, self.qos())

    def subscribe(self, topic: str, msg_type: Any, handler: Callable[[Any], None]) -> None:
        """Standalone only: composed nodes get their input from the container's local links."""
        if not self.composed:
            self.create_subscription(msg_type, topic, handler, self.qos())

    def report(self) -> str:
        """One line for the log when the node stops: what it processed."""
        stages = ", ".join(f"{s.name} {s.count} x {s.mean_ms:.2f} ms" for s in self.statistics.summary())
        return stages or "nothing processed"

    def start(self) -> None:
        """Begin producing (sources start their decode thread); most nodes are purely reactive."""

    def close(self) -> None:
        """Release files and devices; subclasses extend."""
