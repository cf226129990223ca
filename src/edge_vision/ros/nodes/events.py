"""Events node: ``tracks`` -> rules -> ``events`` (edge_vision_msgs/Event), actions (JSONL), and ``stats``."""

from __future__ import annotations

import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray

from edge_vision.core.events import Event
from edge_vision.core.packet import FramePacket
from edge_vision.core.stages import EventStage, build_actions, build_rules
from edge_vision.ros.conversions import event_to_msg, stats_to_diagnostics, stats_to_msg
from edge_vision.ros.nodes.labeled import LabeledNode
from edge_vision.ros.runner import run_node
from edge_vision_msgs.msg import Event as EventMsg
from edge_vision_msgs.msg import PipelineStats


class EventsNode(LabeledNode):
    section = "events"

    def __init__(self, *, stats_period: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage: EventStage | None = None
        self.events_out = self.output("events", EventMsg, event_to_msg)
        self.stats_publisher = self.create_publisher(PipelineStats, "stats", 10)
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(stats_period, self.publish_stats)
        if self.labels:
            self.on_labels()
        self.subscribe_detections("tracks", self.on_packet)

    def on_labels(self) -> None:
        if self.stage is None:
            self.stage = EventStage(build_rules(self.params, self.labels), build_actions(self.params))

    @property
    def rules(self) -> list[Any]:
        return self.stage.rules if self.stage is not None else []

    def on_packet(self, packet: FramePacket) -> None:
        if self.stage is None:
            self.on_labels()
        assert self.stage is not None
        self.stage.process(packet)
        self.statistics.add("events", packet.timings_ms["events"])
        event: Event
        for event in packet.events:
            self.events_out.emit(event)
        self.statistics.frame_done((time.perf_counter() - packet.created) * 1e3)

    def publish_stats(self) -> None:
        stats = self.statistics
        latency = stats.latency_ms[-1] if stats.latency_ms else 0.0
        camera_id = self.get_namespace().strip("/") or "camera"
        message = stats_to_msg(
            camera_id,
            stats.summary(),
            fps=stats.fps,
            latency_ms=latency,
            frames_decoded=stats.frames_decoded,
            frames_processed=stats.frames_processed,
            frames_skipped=stats.frames_skipped,
            frames_dropped=stats.frames_dropped,
            stamp=self.get_clock().now().to_msg(),
        )
        self.stats_publisher.publish(message)
        self.diagnostics_publisher.publish(stats_to_diagnostics(message, self.get_fully_qualified_name()))

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(EventsNode, args))


if __name__ == "__main__":
    main()
