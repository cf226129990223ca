"""Ports between the core graph and ROS topics.

- ``LazyPublisher``: a stage output as a topic; the message is built only while another participant
  subscribes (conversion is most of the cost of a large Image).
- Inputs: a topic feeding a stage whose upstream runs in another process. Messages become packets whose
  metadata comes from the header; detections topics carry no pixels, so their packets have none.
- ``ImageTrackPairer``: the annotate stage alone needs pixels *and* tracks from two topics: pairs them by stamp.
- ``InputGuard``: a malformed or hostile message is dropped, counted on its stage and reported, never raised
  into the executor (an exception in a subscription callback ends ``spin`` and with it the node).
- ``GapCounter``: what never arrived. DDS does not report samples that a KEEP_LAST history overwrote
  (measured: a burst of 500 images to a depth-5 subscription, best effort or reliable, delivered 6-7 and
  raised no ``message_lost`` event), so losses are counted from gaps in the header stamps.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from edge_vision.core.detections import Detections
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.health import OK, WARN, Health
from edge_vision.ros.conversions import (
    compressed_to_frame,
    detections_to_msg,
    event_to_msg,
    frame_to_image,
    image_to_frame,
    msg_to_detections,
    ns_to_stamp,
    stamp_to_ns,
)


def header(meta: FrameMeta) -> Header:
    return Header(stamp=ns_to_stamp(meta.stamp_ns), frame_id=meta.camera_id)


def camera_info_msg(calibration: Any, header: Header) -> CameraInfo:
    """``sensor_msgs/CameraInfo`` from a source's calibration (``core.sources.calibration.CameraInfo``)."""
    msg = CameraInfo(header=header, width=calibration.width, height=calibration.height)
    msg.distortion_model = calibration.distortion_model
    msg.d = [float(v) for v in calibration.d]
    msg.k = [float(v) for v in calibration.k]
    msg.r = [float(v) for v in calibration.r]
    msg.p = [float(v) for v in calibration.p]
    return msg


def topic(camera: str, name: str) -> str:
    return f"{camera}/{name}" if camera else name


class LazyPublisher:
    def __init__(
        self, node: Node, msg_type: Any, name: str, qos: QoSProfile, to_msgs: Callable[[FramePacket], Sequence[Any]]
    ) -> None:
        self.publisher = node.create_publisher(msg_type, name, qos)
        self.to_msgs = to_msgs
        self.published = 0

        self._context = node.context

    @property
    def wanted(self) -> bool:
        # After a shutdown (SIGINT) the graph still drains its queues: nothing is published then.
        if not self._context.ok():
            return False
        try:
            return self.publisher.get_subscription_count() > 0
        except InvalidHandle:  # destroyed while the graph drains
            return False

    def __call__(self, packet: FramePacket) -> None:
        if not self.wanted:
            return
        for msg in self.to_msgs(packet):
            try:
                self.publisher.publish(msg)
            except (InvalidHandle, RuntimeError):  # RuntimeError: rclpy's RCLError, context gone mid-publish
                if self._context.ok():
                    raise
                return
            self.published += 1


def image_out(packet: FramePacket) -> list[Image]:
    return [frame_to_image(packet.frame)]


def annotated_out(packet: FramePacket) -> list[Image]:
    if packet.annotated is None:
        return []
    meta = packet.meta
    return [frame_to_image(Frame(packet.annotated, meta.stamp_ns, meta.camera_id, meta.sequence))]


def detections_out(labels: Sequence[str], field: str) -> Callable[[FramePacket], list[Detection2DArray]]:
    def convert(packet: FramePacket) -> list[Detection2DArray]:
        found = getattr(packet, field)
        return [detections_to_msg(found if found is not None else Detections.empty(), header(packet.meta), labels)]

    return convert


def events_out(packet: FramePacket) -> list[Any]:
    return [event_to_msg(event) for event in packet.events]


class GapCounter:
    """Frames lost before a topic reached this process: gaps in the header stamps of one input, counted in
    frame periods. The period is the smallest stamp gap seen (as the tracker estimates it), so ``every_nth``
    counts no loss; a camera whose stamps jitter by more than half a period over-counts, and says so in the
    drop figures rather than hiding a loss. When a smaller gap reveals a smaller period, the gaps counted with
    the larger one (the last ``history`` of them) are counted again: the first gaps of a burst read as the
    period until a single-frame gap arrives (measured: a third of a 500-message burst went uncounted).

    Stamps are untrusted: a gap under ``min_period_ns`` (1 ms: no camera runs at 1000 fps) never becomes the
    period, and a jump of more than ``max_lost`` periods either way is a discontinuity (a restarted camera, a
    clock step, a bogus stamp) that counts no loss; without both, one message stamped a nanosecond after
    another made every later gap count millions of lost frames. 1000 periods is 33 s at 30 fps: a burst
    that loses more in one go reads as a restart. ``trusted=False`` (a message that came but was refused):
    the gap before it counts, but neither gap beside its stamp sets the period. A recount never lowers what
    was counted."""

    def __init__(self, min_period_ns: int = 1_000_000, max_lost: int = 1000, history: int = 4096) -> None:
        self.min_period_ns = min_period_ns
        self.max_lost = max_lost
        self._last: int | None = None
        self._last_trusted = True
        self._period = 0
        self._counted: deque[list[int]] = deque(maxlen=history)  # [gap, frames counted for it]

    def __call__(self, stamp_ns: int, trusted: bool = True) -> int:
        last, both_trusted = self._last, trusted and self._last_trusted
        self._last, self._last_trusted = stamp_ns, trusted
        if last is None or stamp_ns <= last:
            return 0
        gap = stamp_ns - last
        if both_trusted and gap >= self.min_period_ns and (self._period == 0 or gap < self._period):
            self._period = gap  # a smaller period: what the earlier, larger gaps hid is counted now
            recount = 0
            for entry in self._counted:
                lost = self._lost(entry[0])
                if lost > entry[1]:
                    recount += lost - entry[1]
                    entry[1] = lost
            self._counted.append([gap, 0])
            return recount
        lost = self._lost(gap) if self._period else 0
        self._counted.append([gap, lost])
        return lost

    def _lost(self, gap: int) -> int:
        lost = max(0, round(gap / self._period) - 1)
        return lost if lost <= self.max_lost else 0


class InputGuard:
    """Bad messages on this process's inputs. Each one is dropped and counted on its stage (``Health.dropped``,
    the reason kept as the stage's ``last_error``), logged at most every ``log_every_s`` per topic (with the
    count since the last line), and a ``bad_input`` condition (WARN) on the camera names the topics, their
    counts and the last reason on ``/diagnostics`` until ``hold_s`` pass without another one (``refresh``)."""

    def __init__(
        self, health: Health, warn: Callable[[str], None], *, hold_s: float = 5.0, log_every_s: float = 5.0
    ) -> None:
        self.health = health
        self.warn = warn
        self.hold_s = hold_s
        self.log_every_s = log_every_s
        self._lock = threading.Lock()
        # (camera, topic) -> [count, last reason, when (monotonic), count when last logged, when last logged]
        self._seen: dict[tuple[str, str], list[Any]] = {}
        self._active: set[str] = set()  # cameras with a condition set

    def reject(self, stage: str | None, camera: str, topic: str, reason: str) -> None:
        now = time.monotonic()
        if stage is not None:
            self.health.dropped(stage)
            self.health.stage(stage).last_error = f"dropped a message on {topic}: {reason}"
        with self._lock:
            entry = self._seen.setdefault((camera, topic), [0, "", 0.0, 0, -self.log_every_s])
            entry[0] += 1
            entry[1], entry[2] = reason, now
            say = now - entry[4] >= self.log_every_s
            if say:
                new, entry[3], entry[4] = entry[0] - entry[3], entry[0], now
            message = self._message(camera)
            self._active.add(camera)
        self.health.condition("bad_input", WARN, message, camera)
        if say:
            self.warn(f"dropped {new} bad message(s) on {topic} ({entry[0]} so far): {reason}")

    def rejected(self, camera: str, topic: str) -> int:
        with self._lock:
            entry = self._seen.get((camera, topic))
            return int(entry[0]) if entry else 0

    def refresh(self) -> None:
        """Clear the condition of cameras whose inputs have been clean for ``hold_s``."""
        now = time.monotonic()
        with self._lock:
            quiet = [
                camera
                for camera in self._active
                if all(now - e[2] >= self.hold_s for (cam, _t), e in self._seen.items() if cam == camera)
            ]
            self._active.difference_update(quiet)
        for camera in quiet:
            self.health.condition("bad_input", OK, "", camera)

    def _message(self, camera: str) -> str:
        mine = [(topic, e) for (cam, topic), e in self._seen.items() if cam == camera]
        latest = max(mine, key=lambda item: item[1][2])
        counts = ", ".join(f"{e[0]} on {topic}" for topic, e in mine)
        return f"dropped bad messages: {counts}; last on {latest[0]}: {latest[1][1]}"


class Sequencer:
    """ROS headers carry no frame index: number the messages of one input (informational only; every
    time-dependent stage reads stamps)."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value


def image_packet(msg: Image | CompressedImage, sequence: int) -> FramePacket:
    """Raises MessageError naming the problem for a malformed image."""
    if isinstance(msg, CompressedImage):
        return FramePacket.of(compressed_to_frame(msg, sequence))
    return FramePacket.of(image_to_frame(msg, sequence))


def detections_packet(msg: Detection2DArray, labels: Sequence[str], sequence: int, field: str) -> FramePacket:
    detections = msg_to_detections(msg, labels)
    meta = FrameMeta(stamp_to_ns(msg.header.stamp), msg.header.frame_id, sequence)
    packet = FramePacket(meta)
    setattr(packet, field, detections)
    if field == "tracks":
        packet.detections = detections
    return packet


class ImageTrackPairer:
    """Images and tracks arrive on two topics in either order: hand on a packet once both of a stamp are in.
    At most ``keep`` unpaired of each are held; older ones are dropped and counted by ``on_drop``."""

    def __init__(self, emit: Callable[[FramePacket], None], on_drop: Callable[[], None], keep: int = 60) -> None:
        self.emit = emit
        self.on_drop = on_drop
        self.keep = keep
        self._images: OrderedDict[int, FramePacket] = OrderedDict()
        self._tracks: OrderedDict[int, FramePacket] = OrderedDict()
        self._lock = threading.Lock()

    def image(self, packet: FramePacket) -> None:
        self._arrive(packet, self._images, self._tracks)

    def tracks(self, packet: FramePacket) -> None:
        self._arrive(packet, self._tracks, self._images)

    def _arrive(
        self, packet: FramePacket, mine: OrderedDict[int, FramePacket], other: OrderedDict[int, FramePacket]
    ) -> None:
        stamp = packet.meta.stamp_ns
        with self._lock:
            partner = other.pop(stamp, None)
            if partner is None:
                mine[stamp] = packet
                while len(mine) > self.keep:
                    mine.popitem(last=False)
                    self.on_drop()
                return
        image, tracks = (packet, partner) if packet.image is not None else (partner, packet)
        image.tracks, image.detections = tracks.tracks, tracks.detections
        self.emit(image)
