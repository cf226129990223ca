"""Ports between the core graph and ROS topics.

- ``LazyPublisher``: a stage output as a topic; the message is built only while another participant
  subscribes (conversion is most of the cost of a large Image).
- Inputs: a topic feeding a stage whose upstream runs in another process. Messages become packets whose
  metadata comes from the header; detections topics carry no pixels, so their packets have none.
- ``ImageTrackPairer``: the annotate stage alone needs pixels *and* tracks from two topics: pairs them by stamp.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
    drop figures rather than hiding a loss."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._period = 0

    def __call__(self, stamp_ns: int) -> int:
        last, self._last = self._last, stamp_ns
        if last is None or stamp_ns <= last:
            return 0
        gap = stamp_ns - last
        if self._period == 0 or gap < self._period:
            self._period = gap
            return 0
        return max(0, round(gap / self._period) - 1)


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
