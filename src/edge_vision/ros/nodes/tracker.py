"""Tracker node: ``detections`` -> ``tracks`` (Detection2DArray with the track id in ``Detection2D.id``)."""

from __future__ import annotations

import sys
from typing import Any

from vision_msgs.msg import Detection2DArray

from edge_vision.core.detections import Detections
from edge_vision.core.packet import FramePacket
from edge_vision.core.stages import TrackStage, build_tracker
from edge_vision.ros.conversions import detections_to_msg, frame_header
from edge_vision.ros.nodes.labeled import LabeledNode
from edge_vision.ros.runner import run_node
from edge_vision.ros.stage_node import Output


class TrackerNode(LabeledNode):
    section = "tracker"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = TrackStage(build_tracker(self.params))
        self.tracks_out: Output[FramePacket] = self.output(
            "tracks",
            Detection2DArray,
            lambda p: detections_to_msg(p.tracks or Detections.empty(), frame_header(p.frame), self.labels),
        )
        self.subscribe_detections("detections", self._from_ros)

    def _from_ros(self, packet: FramePacket) -> None:
        packet.tracks = None
        self.on_packet(packet)

    def on_packet(self, packet: FramePacket) -> None:
        self.stage.process(packet)
        self.statistics.add("tracking", packet.timings_ms["tracking"])
        self.tracks_out.emit(packet)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(TrackerNode, args))


if __name__ == "__main__":
    main()
