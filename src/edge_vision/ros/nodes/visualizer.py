"""Visualizer node: frames + tracks -> ``image_annotated`` and, optionally, an annotated MP4.

Annotation runs only when its output is wanted (a video file, or a subscriber to the topic)."""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sensor_msgs.msg import Image

from edge_vision.core.actions.video import VideoWriter
from edge_vision.core.annotate import Annotator
from edge_vision.core.frame import Frame
from edge_vision.core.interfaces import Rule
from edge_vision.core.packet import FramePacket
from edge_vision.ros.conversions import MessageError, frame_to_image, image_to_frame, stamp_to_ns
from edge_vision.ros.nodes.labeled import LabeledNode
from edge_vision.ros.runner import run_node

_PAIRING_CACHE = 60  # frames held while waiting for their partner message


class VisualizerNode(LabeledNode):
    section = "visualizer"

    def __init__(self, *, rules: Sequence[Rule] = (), source_fps: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rules = list(rules)
        self.annotator = Annotator()
        fps = self.params["video_fps"] or source_fps or 10.0
        self.video = VideoWriter(self.params["video_path"], fps=fps) if self.params["video_path"] else None
        self.frames_written = 0
        self.annotated_out = self.output("image_annotated", Image, self._to_image)
        self._images: OrderedDict[int, Image] = OrderedDict()
        self._tracks: OrderedDict[int, FramePacket] = OrderedDict()
        self.subscribe("image_raw", Image, self._on_image)
        self.subscribe_detections("tracks", self._on_tracks)

    @staticmethod
    def _to_image(item: tuple[Frame, Any]) -> Image:
        return frame_to_image(item[0])

    def _on_image(self, msg: Image) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        packet = self._tracks.pop(stamp, None)
        if packet is not None:
            self._draw(msg, packet)
            return
        self._images[stamp] = msg
        while len(self._images) > _PAIRING_CACHE:
            self._images.popitem(last=False)

    def _on_tracks(self, packet: FramePacket) -> None:
        # Image and tracks come on separate topics, in either order: pair them by source stamp.
        msg = self._images.pop(packet.frame.stamp_ns, None)
        if msg is not None:
            self._draw(msg, packet)
            return
        self._tracks[packet.frame.stamp_ns] = packet
        while len(self._tracks) > _PAIRING_CACHE:
            self._tracks.popitem(last=False)

    def _draw(self, msg: Image, packet: FramePacket) -> None:
        try:
            frame = image_to_frame(msg, packet.frame.sequence)
        except MessageError as exc:
            self.get_logger().warning(f"dropping image: {exc}")
            return
        packet.frame = frame
        self.on_packet(packet)

    def on_packet(self, packet: FramePacket) -> None:
        if self.video is None and not self.annotated_out.has_ros_subscribers and not self.annotated_out.links:
            return
        t0 = time.perf_counter()
        tracks = packet.tracks if packet.tracks is not None else packet.detections
        image = self.annotator.annotate(packet.frame, tracks, self.labels, self.rules)
        annotated = Frame(image, packet.frame.stamp_ns, packet.frame.camera_id, packet.frame.sequence)
        self.statistics.add("annotate", (time.perf_counter() - t0) * 1e3)
        if self.video is not None:
            self.video.write(image)
            self.frames_written += 1
        self.annotated_out.emit((annotated, packet))

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(VisualizerNode, args))


if __name__ == "__main__":
    main()
