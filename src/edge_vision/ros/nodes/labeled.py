"""Base for nodes downstream of the detector: they learn class names from the latched ``label_info``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core.frame import Frame
from edge_vision.core.packet import FramePacket, SequenceFromStamps
from edge_vision.ros.conversions import MessageError, msg_to_detections, stamp_to_ns
from edge_vision.ros.nodes.detector import LATCHED
from edge_vision.ros.stage_node import StageNode

# Nodes that receive only detections still hand a Frame to the core; it carries no pixels.
NO_PIXELS = np.zeros((0, 0, 3), np.uint8)
_MAX_PENDING = 300


class LabeledNode(StageNode):
    def __init__(self, *, labels: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels: list[str] = list(labels or [])
        self._pending: list[Detection2DArray] = []
        self._sequence = SequenceFromStamps(float(self.params.get("frame_rate", 0.0)))
        self.rejected = 0
        if not self.composed:
            self.create_subscription(LabelInfo, "label_info", self._on_label_info, LATCHED)

    def subscribe_detections(self, topic: str, handler: Callable[[FramePacket], None]) -> None:
        self._handler = handler
        self.subscribe(topic, Detection2DArray, self._on_detections)

    def on_labels(self) -> None:
        """Hook: labels just became known."""

    def _on_label_info(self, msg: LabelInfo) -> None:
        by_id = {c.class_id: c.class_name for c in msg.class_map}
        self.labels = [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
        self.on_labels()
        pending, self._pending = self._pending, []
        for item in pending:
            self._on_detections(item)

    def _on_detections(self, msg: Detection2DArray) -> None:
        if not self.labels:  # detections can overtake the latched label_info on another topic
            if len(self._pending) < _MAX_PENDING:
                self._pending.append(msg)
            return
        try:
            detections = msg_to_detections(msg, self.labels)
        except MessageError as exc:
            self.rejected += 1
            self.get_logger().warning(f"dropping {msg.__class__.__name__}: {exc}")
            return
        stamp = stamp_to_ns(msg.header.stamp)
        frame = Frame(NO_PIXELS, stamp, msg.header.frame_id, self._sequence(stamp))
        packet = FramePacket(frame, detections=detections, tracks=detections)
        self._handler(packet)
