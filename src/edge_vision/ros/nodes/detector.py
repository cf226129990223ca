"""Detector node: ``image_raw`` -> ``detections`` (vision_msgs/Detection2DArray) and ``label_info``."""

from __future__ import annotations

import sys
from typing import Any

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core.detections import Detections
from edge_vision.core.packet import FramePacket, SequenceFromStamps
from edge_vision.core.pipeline import ParallelStage
from edge_vision.core.stages import DetectStage, build_detector
from edge_vision.ros.conversions import (
    MessageError,
    detections_to_msg,
    frame_header,
    image_to_frame,
    label_info,
    stamp_to_ns,
)
from edge_vision.ros.runner import run_node
from edge_vision.ros.stage_node import Output, StageNode

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class DetectorNode(StageNode):
    section = "detector"

    def __init__(self, *, maxsize: int = 4, drop_when_full: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # One detector (inference session) per worker; frames leave in the order they came.
        self.stages = [DetectStage(build_detector(self.params)) for _ in range(self.params["workers"])]
        self.detector = self.stages[0].detector
        self.labels = self.detector.labels
        self.inlet: ParallelStage[FramePacket] = ParallelStage(
            "detector",
            self._process,
            self._emit,
            workers=len(self.stages),
            maxsize=maxsize,
            drop_when_full=drop_when_full,
        )
        labels = self.labels
        self.detections_out: Output[FramePacket] = self.output(
            "detections",
            Detection2DArray,
            lambda p: detections_to_msg(p.detections or Detections.empty(), frame_header(p.frame), labels),
        )
        # LabelInfo once, transient-local: late subscribers still get the class map.
        self.label_info_publisher = self.create_publisher(LabelInfo, "label_info", LATCHED)
        self.label_info_publisher.publish(label_info(self.labels, threshold=self.params["confidence"]))
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
        self.inlet.put(packet)

    def _process(self, worker: int, packet: FramePacket) -> FramePacket:
        self.stages[worker].process(packet)
        self.statistics.add_timings({k: packet.timings_ms[k] for k in ("preprocess", "inference", "postprocess")})
        return packet

    def _emit(self, packet: FramePacket) -> None:
        self.detections_out.emit(packet)

    def close(self) -> None:
        self.inlet.close()


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(DetectorNode, args))


if __name__ == "__main__":
    main()
