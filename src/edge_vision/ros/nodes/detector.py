"""Detector node: ``image_raw`` -> ``detections`` (vision_msgs/Detection2DArray) and ``label_info``."""

from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core.detections import Detections
from edge_vision.core.packet import FramePacket, SequenceFromStamps
from edge_vision.core.stages import DetectStage, build_detector
from edge_vision.ros.conversions import (
    MessageError,
    detections_to_msg,
    frame_header,
    image_to_frame,
    label_info,
    stamp_to_ns,
)
from edge_vision.ros.runner import exit_with, run_node
from edge_vision.ros.stage_node import Output, StageNode

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class DetectorNode(StageNode):
    section = "detector"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.detector = build_detector(self.params)
        self.labels = self.detector.labels
        self.stage = DetectStage(self.detector)
        labels = self.labels
        self.detections_out: Output[FramePacket] = self.output(
            "detections",
            Detection2DArray,
            lambda p: detections_to_msg(p.detections or Detections.empty(), frame_header(p.frame), labels),
        )
        # LabelInfo once, transient-local: late subscribers still get the class map.
        self.label_info_publisher = self.create_publisher(LabelInfo, "label_info", LATCHED)
        self.label_info_publisher.publish(label_info(self.labels))
        self._sequence = SequenceFromStamps()
        self.rejected = 0
        self.subscribe("image_raw", Image, self.on_image)

    def on_image(self, msg: Image) -> None:
        try:
            frame = image_to_frame(msg, self._sequence(stamp_to_ns(msg.header.stamp)))
        except MessageError as exc:
            self.rejected += 1
            self.get_logger().warning(f"dropping image: {exc}")
            return
        self.on_packet(FramePacket(frame))

    def on_packet(self, packet: FramePacket) -> None:
        self.stage.process(packet)
        self.statistics.add_timings({k: packet.timings_ms[k] for k in ("preprocess", "inference", "postprocess")})
        self.detections_out.emit(packet)


def main(args: list[str] | None = None) -> None:
    exit_with(run_node(DetectorNode, args))


if __name__ == "__main__":
    main()
