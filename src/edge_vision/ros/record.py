"""``BagRecorder``: chosen topics of a running pipeline into a rosbag2 bag (mcap or sqlite3).

Each topic is subscribed once its first publisher is discovered, with the publisher's type and a QoS that
matches it (reliable only when every publisher is reliable, transient local when they are: ``label_info``), and
recorded raw: the serialized bytes as they arrived, stamped with their receive time, as ``ros2 bag record``
does. ``stop`` drains what has arrived before the bag is closed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from edge_vision.bag.io import BagWriter, qos
from edge_vision.ros.replay import message_class

DEFAULT_TOPICS = ("detections", "tracks", "events", "label_info", "stats")
DEPTH = 1000  # reader history: a burst waits here while the bag writes (mcap: ~1 ms per 1 MB image)


@dataclass
class _Topic:
    name: str  # fully qualified
    msgtype: str = ""
    subscription: Any = None
    announced: bool = False
    publishers: int = 0


@dataclass
class RecordResult:
    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class BagRecorder:
    def __init__(
        self,
        bag: str | Path,
        topics: Sequence[str] = DEFAULT_TOPICS,
        *,
        storage: str = "mcap",
        context: Context,
        namespace: str = "",
        out: TextIO | None = None,
    ) -> None:
        self.context = context
        self.out = out
        self.node = Node("edge_vision_record", namespace=namespace or "/", context=context)
        self.topics = {}
        for topic in topics:
            name = self.node.resolve_topic_name(topic)
            self.topics[name] = _Topic(name)
        self.writer = BagWriter(bag, storage)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.node.create_timer(0.1, self._discover)
        self._discover()

    def _say(self, line: str) -> None:
        if self.out is not None:
            print(f"edge-vision record: {line}", file=self.out, flush=True)

    def _discover(self) -> None:
        """Subscribe each topic once a publisher of it is known; announce it once the subscription matched."""
        for topic in self.topics.values():
            if topic.subscription is None:
                infos = self.node.get_publishers_info_by_topic(topic.name)
                if infos:
                    self._subscribe(topic, infos)
            elif not topic.announced and topic.subscription.get_publisher_count() > 0:
                topic.announced = True
                topic.publishers = topic.subscription.get_publisher_count()
                self._say(f"recording {topic.name} ({topic.msgtype}, {topic.publishers} publisher(s))")

    def _subscribe(self, topic: _Topic, infos: Sequence[Any]) -> None:
        types = sorted({info.topic_type for info in infos})
        if len(types) > 1:
            self._say(f"{topic.name} is published with several types {types}: recording {types[0]}")
        topic.msgtype = types[0]
        reliable = all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in infos)
        latched = all(info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for info in infos)
        profile = QoSProfile(
            depth=DEPTH,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )
        self.writer.add(topic.name, topic.msgtype, [qos(reliable=reliable, latched=latched, depth=10)])
        name = topic.name
        topic.subscription = self.node.create_subscription(
            message_class(topic.msgtype), name, lambda data, info: self._on_message(name, data, info), profile, raw=True
        )

    def _on_message(self, topic: str, data: bytes, info: Any) -> None:
        received = info.get("received_timestamp") if isinstance(info, dict) else None
        self.writer.write(topic, int(received or time.time_ns()), data)

    @property
    def ready(self) -> bool:
        """Every topic is subscribed and matched to a publisher."""
        return all(t.announced for t in self.topics.values())

    def spin(self, duration: float = 0.0, stop: threading.Event | None = None) -> None:
        """Record until ``duration`` s have passed (0 = no limit), ``stop`` is set or the context shuts down."""
        deadline = self._started + duration if duration > 0 else None
        with contextlib.suppress(ExternalShutdownException):
            while self.context.ok() and not (stop is not None and stop.is_set()):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._executor.spin_once(timeout_sec=0.05)

    def drain(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Take what DDS has already delivered: spin until nothing has arrived for ``quiet`` s."""
        if not self.context.ok():
            return
        end = time.monotonic() + limit
        last = sum(self.writer.counts.values())
        calm_since = time.monotonic()
        with contextlib.suppress(ExternalShutdownException):
            while time.monotonic() < end and self.context.ok():
                self._executor.spin_once(timeout_sec=0.05)
                now = sum(self.writer.counts.values())
                if now != last:
                    last, calm_since = now, time.monotonic()
                elif time.monotonic() - calm_since >= quiet:
                    return

    def close(self) -> RecordResult:
        self.writer.close()
        self._executor.shutdown(timeout_sec=2)
        with contextlib.suppress(Exception):
            self.node.destroy_node()
        return RecordResult(self.writer.path, dict(self.writer.counts), time.monotonic() - self._started)
