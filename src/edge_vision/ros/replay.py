"""``BagPlayer``: a bag played into running ROS nodes, every frame delivered.

Messages are published exactly as recorded (serialized bytes: the recorded header stamps are kept), in bag
order, with one of three pacings: the recorded rate (scaled by ``rate``), as fast as the pipeline takes them,
or stepped (Enter on stdin, ``step_count`` images a step). ``clock`` publishes the bag time on ``/clock`` for
nodes run with ``use_sim_time``.

No frame is lost: the player waits for the image subscribers before the first frame, publishes images reliably
with KEEP_ALL, and, when the pipeline's ``tracks`` topic is there to acknowledge them (one message per frame,
header stamp = the image's stamp), keeps at most ``window`` images unacknowledged. The pipeline's image input
holds ``detector.input_depth`` images (5 by default); a window no larger than that never overflows it, whatever
the QoS, and a frame that is still not acknowledged after ``ack_timeout`` s of no progress is reported as lost
(exit code 1), never skipped silently.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import logging
import os
import select
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from edge_vision.bag.io import BagMessage, BagReader, header_stamp_ns
from edge_vision.bag.types import CLOCK, IMAGE_TYPES, BagError, has_header
from edge_vision.core.errors import EdgeVisionError

log = logging.getLogger(__name__)

# Matching is seen from one side only: this process sees the pipeline's reader (and writer) a moment before
# the pipeline has matched this process's writer (and ack reader) back, and a sample sent in between is lost to
# a volatile late joiner. Nothing shows the remote side's match, so wait as the container does (0.5 s) after
# the local matches; the ack readers are created with the image writers so both are announced together.
SETTLE_S = 0.5
KNOWN_ACKS = {"tracks": "vision_msgs/msg/Detection2DArray", "detections": "vision_msgs/msg/Detection2DArray"}
IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
# Acknowledgements must never be lost: one per frame, far more than any window.
ACK_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
# As rclcpp's ClockQoS (what ros2 bag play publishes /clock with): best effort, latest only.
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
IMAGE_SUFFIXES = ("image_raw/compressed", "image_raw")
# auto ack: how long after the image subscriber matched to look for its tracks publisher. Endpoints of one
# participant are announced together; on localhost the second shows up within milliseconds of the first.
AUTO_ACK_GRACE_S = 1.0


class ReplayError(EdgeVisionError):
    """The replay could not deliver what it was asked to (no subscriber, a frame never acknowledged)."""


@dataclass
class ReplayOptions:
    rate: float = 1.0  # recorded rate x rate; 0 = as fast as the pipeline takes them
    step: bool = False  # wait for Enter on ``stdin`` before each step
    step_count: int = 1  # images per step
    clock: bool = False  # publish /clock from the bag time
    clock_hz: float = 40.0  # /clock rate while waiting between messages (ros2 bag play's default)
    topics: list[str] = field(default_factory=list)  # empty = every topic of the bag
    ack_topic: str = "auto"  # "auto": tracks if the pipeline publishes it; "": none; else that topic
    window: int = 4  # unacknowledged images at most (<= the pipeline's input depth)
    wait_for: int = 1  # image subscribers to wait for before the first frame
    wait_timeout: float = 30.0
    ack_timeout: float = 10.0  # seconds without any acknowledgement before the rest count as lost
    skip_latched: bool = False  # leave transient-local topics (label_info) out: a live detector sends its own

    def check(self) -> None:
        if self.rate < 0:
            raise ReplayError(f"rate must be >= 0 (0 = as fast as possible), got {self.rate}")
        if self.step_count < 1:
            raise ReplayError(f"step count must be >= 1, got {self.step_count}")
        if self.window < 1:
            raise ReplayError(f"ack window must be >= 1, got {self.window}")
        if self.clock_hz <= 0:
            raise ReplayError(f"clock rate must be > 0 Hz, got {self.clock_hz}")


@dataclass
class ReplayResult:
    published: Counter[str] = field(default_factory=Counter)
    images: int = 0
    acknowledged: int = 0
    ack_topics: list[str] = field(default_factory=list)
    lost_stamps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False  # quit from the keyboard (step mode) or shut down

    @property
    def fps(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``; ReplayError naming it when its package is not installed."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(f"message type {msgtype} is not installed for rclpy: {exc}") from exc


def ack_topic_for(image_topic: str, ack: str) -> str:
    """``tracks`` for ``/front/image_raw`` is ``/front/tracks``: the pipeline's outputs sit in its camera's
    namespace, next to its input."""
    if ack.startswith("/"):
        return ack
    namespace = image_topic
    for suffix in IMAGE_SUFFIXES:
        if image_topic.endswith(suffix):
            namespace = image_topic[: -len(suffix)]
            break
    else:
        namespace = image_topic.rsplit("/", 1)[0] + "/"
    return f"{namespace.rstrip('/')}/{ack}" if namespace.strip("/") else f"/{ack}"


class _Acks:
    """Stamps published and not yet acknowledged, per ack topic (a multiset: two cameras may share stamps)."""

    def __init__(self) -> None:
        self.pending: dict[str, Counter[int]] = {}
        self.acknowledged = 0
        self.last_progress = time.monotonic()
        self._cond = threading.Condition()

    def sent(self, topic: str, stamp_ns: int) -> None:
        with self._cond:
            if not self.in_flight():
                self.last_progress = time.monotonic()  # the no-progress clock runs only while frames are out
            self.pending.setdefault(topic, Counter())[stamp_ns] += 1

    def received(self, topic: str, stamp_ns: int) -> None:
        with self._cond:
            waiting = self.pending.get(topic)
            if waiting is None or waiting[stamp_ns] <= 0:
                return  # an output of a frame that is not ours (or a late duplicate)
            waiting[stamp_ns] -= 1
            if not waiting[stamp_ns]:
                del waiting[stamp_ns]
            self.acknowledged += 1
            self.last_progress = time.monotonic()
            self._cond.notify_all()

    def in_flight(self) -> int:
        return sum(sum(c.values()) for c in self.pending.values())

    def wait_below(self, limit: int, timeout: float, alive: Callable[[], bool]) -> bool:
        """Wait until fewer than ``limit`` are in flight; False after ``timeout`` s without progress."""
        with self._cond:
            while self.in_flight() >= limit and alive():
                if time.monotonic() - self.last_progress > timeout:
                    return False
                self._cond.wait(0.05)
            return True

    def lost(self) -> list[int]:
        with self._cond:
            return sorted(stamp for c in self.pending.values() for stamp, n in c.items() for _ in range(n))


class BagPlayer:
    def __init__(
        self,
        bag: str | Path,
        options: ReplayOptions,
        *,
        context: Context,
        stdin: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        options.check()
        self.options = options
        self.context = context
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stderr
        self.reader = BagReader(bag)
        topics = self.reader.topics
        chosen = options.topics or sorted(topics)
        missing = [t for t in chosen if t not in topics]
        if missing:
            self.reader.close()
            raise BagError(f"bag {bag} has no topic(s) {missing}; it has {sorted(topics)}")
        self.topics = {name: topics[name] for name in chosen if not (options.skip_latched and topics[name].latched)}
        self.images = [name for name, t in self.topics.items() if t.msgtype in IMAGE_TYPES]
        for name in self.images:
            if not has_header(self.topics[name].msgtype):
                self.reader.close()
                raise BagError(f"{name}: {self.topics[name].msgtype} has no header to acknowledge frames by")
        self.node = Node("edge_vision_replay", context=context)
        self.acks = _Acks()
        self.result = ReplayResult()
        self.publishers: dict[str, Any] = {}
        self._ack_subscriptions: dict[str, Any] = {}
        self._ack_of: dict[str, str] = {}  # image topic -> its ack topic
        self._stop = threading.Event()
        self._stdin_buffer = b""
        self._timed_out = False
        self._bag_t0 = 0
        self._wall0 = 0.0
        try:
            self._make_publishers()
            self._early_acks()
        except BaseException:
            self.close()
            raise

    def _make_publishers(self) -> None:
        for name, topic in self.topics.items():
            if topic.msgtype in IMAGE_TYPES:
                profile = IMAGE_QOS
            elif topic.latched:
                profile = QoSProfile(
                    depth=max(1, topic.count),
                    durability=DurabilityPolicy.TRANSIENT_LOCAL,
                    reliability=ReliabilityPolicy.RELIABLE,
                )
            else:
                profile = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            self.publishers[name] = self.node.create_publisher(message_class(topic.msgtype), name, profile)
        self._clock_type = message_class(CLOCK)
        self.clock_publisher = (
            self.node.create_publisher(self._clock_type, "/clock", CLOCK_QOS) if self.options.clock else None
        )

    # -- set-up --------------------------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        print(f"edge-vision replay: {line}", file=self.out, flush=True)

    def _alive(self) -> bool:
        return self.context.ok() and not self._stop.is_set()

    def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not self._alive():
                return False
            time.sleep(0.02)
        return True

    def _wait_for_subscribers(self) -> None:
        wanted, timeout = self.options.wait_for, self.options.wait_timeout
        if not wanted or not self.images:
            return
        for name in self.images:
            publisher = self.publishers[name]
            if not self._wait(functools.partial(_enough, publisher.get_subscription_count, wanted), timeout):
                raise ReplayError(
                    f"{name}: {publisher.get_subscription_count()} subscriber(s) after {timeout:.0f} s, "
                    f"waiting for {wanted}: is the pipeline running, with the same ROS_DOMAIN_ID? "
                    "(--wait-for 0 plays without waiting)"
                )

    def _early_acks(self) -> None:
        """Subscribe the ack topics whose type is known now (``tracks``, ``detections``: Detection2DArray), at
        construction: the pipeline must discover this reader before its first acknowledgement, or that one is
        published to nobody. Created with the image writers, both are announced together."""
        ack = self.options.ack_topic
        for image in self.images if ack else []:
            topic = ack_topic_for(image, "tracks" if ack == "auto" else ack)
            if topic.rsplit("/", 1)[-1] in KNOWN_ACKS:
                self._ack_subscription(image, topic, KNOWN_ACKS[topic.rsplit("/", 1)[-1]])

    def _ack_subscription(self, image: str, topic: str, msgtype: str) -> None:
        cls = message_class(msgtype)
        if not hasattr(cls, "header"):
            raise ReplayError(f"ack topic {topic} is {msgtype}, which has no header stamp to match frames by")
        self._ack_of[image] = topic
        if topic not in self._ack_subscriptions:
            self._ack_subscriptions[topic] = self.node.create_subscription(
                cls, topic, functools.partial(self._on_ack, topic), ACK_QOS
            )

    def _on_ack(self, topic: str, msg: Any) -> None:
        self.acks.received(topic, _stamp_ns(msg))

    def _subscribe_acks(self) -> None:
        """Once the image subscribers are there: keep the ack topics something publishes (auto: drop the others),
        subscribe the ones of a type only the graph tells, and wait until each is matched to its publisher."""
        ack = self.options.ack_topic
        for image in self.images if ack else []:
            topic = ack_topic_for(image, "tracks" if ack == "auto" else ack)
            # The subscriber of the images was discovered; its own publishers may be a moment behind.
            grace = AUTO_ACK_GRACE_S if ack == "auto" else self.options.wait_timeout
            self._wait(functools.partial(self._published, topic), grace)
            # Publishers only: the graph also lists this player's own early ack subscription.
            types = sorted({info.topic_type for info in self.node.get_publishers_info_by_topic(topic)})
            if not types:
                if ack != "auto":
                    raise ReplayError(f"nothing publishes the ack topic {topic} (for {image}): is the pipeline up?")
                self._say(f"nothing publishes {topic}: playing {image} without acknowledgements")
                self._ack_of.pop(image, None)
                subscription = self._ack_subscriptions.pop(topic, None)
                if subscription is not None:
                    self.node.destroy_subscription(subscription)
                continue
            if image not in self._ack_of:
                self._ack_subscription(image, topic, types[0])
        for topic, subscription in self._ack_subscriptions.items():
            matched = functools.partial(_enough, subscription.get_publisher_count, 1)
            if not self._wait(matched, self.options.wait_timeout):
                raise ReplayError(f"ack topic {topic}: no publisher matched after {self.options.wait_timeout:.0f} s")
        self.result.ack_topics = sorted(self._ack_subscriptions)

    def _published(self, topic: str) -> bool:
        return bool(self.node.get_publishers_info_by_topic(topic))

    # -- playing -------------------------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        """Play the whole bag (or until stopped). Raises ReplayError when a frame was not acknowledged."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self.node)
        spinner = threading.Thread(target=_spin, args=(executor,), name="replay-executor", daemon=True)
        spinner.start()
        try:
            self._wait_for_subscribers()
            self._subscribe_acks()
            if self.images and (self.options.wait_for or self._ack_subscriptions):
                time.sleep(SETTLE_S)
            self._play()
            self._finish()
        finally:
            executor.shutdown(timeout_sec=2)
            spinner.join(5)
        return self.result

    def stop(self) -> None:
        self._stop.set()

    def _play(self) -> None:
        options = self.options
        started = time.monotonic()
        first = True
        in_step = 0
        for message in self.reader.messages(list(self.topics)):
            if not self._alive():
                self.result.stopped = True
                break
            if first:
                first = False
                self._bag_t0, self._wall0 = message.stamp_ns, time.monotonic()
            is_image = message.topic in self.images
            if options.step and is_image:
                if in_step == 0 and not self._prompt():
                    self.result.stopped = True
                    break
                in_step = (in_step + 1) % options.step_count
            elif options.rate > 0 and not options.step:
                self._sleep_until(self._wall0 + (message.stamp_ns - self._bag_t0) / 1e9 / options.rate)
            acknowledged = is_image and message.topic in self._ack_of
            if acknowledged and not self.acks.wait_below(options.window, options.ack_timeout, self._alive):
                self._timed_out = True
                break  # reported by _finish
            self._publish_clock(message.stamp_ns)
            self._publish(message)
            if options.step and is_image and in_step == 0:
                self.acks.wait_below(1, options.ack_timeout, self._alive)
        self.result.seconds = time.monotonic() - started

    def _prompt(self) -> bool:
        done = self.result.images
        print(
            f"edge-vision replay: {done} image(s) played; Enter plays {self.options.step_count} more, q quits",
            file=self.out,
            flush=True,
        )
        line = self._readline()
        return line is not None and line.strip().lower() not in ("q", "quit")

    def _readline(self) -> str | None:
        """A line of stdin; None at its end or once stopped. Read from the descriptor and polled, so a stop
        (Ctrl-C) is never stuck behind a blocking read and lines piped in at once are all seen."""
        try:
            fileno = self.stdin.fileno()
        except (OSError, AttributeError, io.UnsupportedOperation):  # not a real file (a StringIO in tests)
            line = self.stdin.readline()
            return line or None
        while self._alive():
            if b"\n" in self._stdin_buffer:
                line, _, self._stdin_buffer = self._stdin_buffer.partition(b"\n")
                return line.decode(errors="replace")
            ready, _, _ = select.select([fileno], [], [], 0.1)
            if ready:
                chunk = os.read(fileno, 4096)
                if not chunk:
                    return None
                self._stdin_buffer += chunk
        return None

    def _sleep_until(self, wall: float) -> None:
        period = 1.0 / self.options.clock_hz
        while self._alive():
            left = wall - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, period))
            if self.clock_publisher is not None and left > period:
                # Between messages the bag time runs with the wall clock, scaled by the rate.
                self._publish_clock(self._bag_t0 + int((time.monotonic() - self._wall0) * self.options.rate * 1e9))

    def _publish_clock(self, stamp_ns: int) -> None:
        if self.clock_publisher is None:
            return
        msg = self._clock_type()
        msg.clock.sec, msg.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
        self.clock_publisher.publish(msg)

    def _publish(self, message: BagMessage) -> None:
        topic = message.topic
        if topic in self._ack_of:
            self.acks.sent(self._ack_of[topic], header_stamp_ns(message.data))
        self.publishers[topic].publish(message.data)
        self.result.published[topic] += 1
        if topic in self.images:
            self.result.images += 1

    def _finish(self) -> None:
        if self._ack_subscriptions and not self._timed_out:
            self.acks.wait_below(1, self.options.ack_timeout, self._alive)
        self.result.acknowledged = self.acks.acknowledged
        self.result.lost_stamps = self.acks.lost()
        if self.context.ok():
            for publisher in self.publishers.values():
                # Reliable subscribers get the tail before this node goes away.
                publisher.wait_for_all_acked(Duration(seconds=5))
        if self.result.lost_stamps and not self.result.stopped:
            first = self.result.lost_stamps[0]
            raise ReplayError(
                f"{len(self.result.lost_stamps)} of {self.result.images} image(s) were not acknowledged on "
                f"{', '.join(self.result.ack_topics)} within {self.options.ack_timeout:.0f} s "
                f"(first stamp {first} ns): the pipeline lost or failed on them"
            )

    def close(self) -> None:
        self.reader.close()
        with contextlib.suppress(Exception):
            self.node.destroy_node()


def _enough(count: Callable[[], int], wanted: int) -> bool:
    return count() >= wanted


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _spin(executor: SingleThreadedExecutor) -> None:
    with contextlib.suppress(ExternalShutdownException):
        executor.spin()
