"""``RosPipeline``: the core graph with ROS at its edges. Every ROS executable of this package is one:

- ``pipeline_container`` (composed): every stage in one process, frames passed by reference; a stage listed
  in ``pipeline.external`` is left to another process and its output taken from its topic instead.
- ``camera_node``, ``detector_node``, ``tracker_node``, ``events_node``, ``visualizer_node``: one stage each,
  fed from the upstream stage's topic.

Either way a section node (``SectionNode``) holds each stage's parameters, a stage output becomes a topic
published only while subscribed, and health (``stats``, ``/diagnostics``) is published on a timer while it
runs. Exit codes: 0 the run succeeded, 1 it failed (a source failed, a stage exhausted its error budget),
2 the configuration is invalid.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core import config
from edge_vision.core.errors import EdgeVisionError
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.build import STAGES, Pipeline, stage_name
from edge_vision.core.runtime.health import Health
from edge_vision.ros import bridge
from edge_vision.ros.conversions import MessageError, label_info, report_to_status, stats_to_msg
from edge_vision.ros.node import SectionNode
from edge_vision_msgs.msg import Event as EventMsg
from edge_vision_msgs.msg import PipelineStats

log = logging.getLogger(__name__)

SECTION_OF_STAGE = {
    "source": "camera",
    "detect": "detector",
    "track": "tracker",
    "events": "events",
    "annotate": "visualizer",
}
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
_MAX_PENDING = 300  # messages held while a standalone node waits for label_info


class RosPipeline:
    """stages: the stages run here (None: all but ``pipeline.external``). sections: resolved config given
    in-process (CLI); otherwise each node reads its parameters from ``--params-file`` / launch."""

    def __init__(
        self,
        stages: Collection[str] | None = None,
        *,
        sections: Mapping[str, Mapping[str, Any]] | None = None,
        context: Context | None = None,
        namespace: str = "",
    ) -> None:
        given = sections or {}
        kwargs: dict[str, Any] = {"namespace": namespace}
        if context is not None:
            kwargs["context"] = context
        self.context = context or rclpy.get_default_context()
        self.nodes: dict[str, SectionNode] = {}
        self.pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, Any]] = []
        try:
            composed = stages is None or len(stages) > 1
            if composed:
                self.nodes["pipeline"] = SectionNode("pipeline", values=given.get("pipeline"), **kwargs)
            pipeline_values = (
                self.nodes["pipeline"].values if composed else config.resolve("pipeline", given.get("pipeline"))
            )
            if stages is None:
                stages = [s for s in STAGES if s not in pipeline_values["external"]]
            self.stages = [s for s in STAGES if s in stages]
            for stage in self.stages:
                section = SECTION_OF_STAGE[stage]
                self.nodes[section] = SectionNode(section, values=given.get(section), **kwargs)
            self.sections: dict[str, Any] = {}
            for section in config.SCHEMA:
                if section in self.nodes:
                    self.sections[section] = self.nodes[section].values
                elif section == "pipeline":
                    self.sections[section] = pipeline_values
                else:
                    self.sections[section] = dict(given[section]) if section in given else config.resolve(section)
            config.check_cross(self.sections)
            self.camera_names = list(config.camera_sections(self.sections))
            self.health = Health(error_budget=pipeline_values["error_budget"])
            self.owner = self.nodes.get("pipeline") or self.nodes[SECTION_OF_STAGE[self.stages[0]]]
            self._make_outputs()
            self._make_inputs()
            self._make_health_timer(pipeline_values["stats_period"])
            if "detect" in self.stages or not self._needs_labels():
                self._build(None)
            else:
                self.owner.create_subscription(LabelInfo, "label_info", self._on_label_info, LATCHED)
        except BaseException:
            self.destroy()
            raise

    # -- set-up --------------------------------------------------------------------------------------------

    def _needs_labels(self) -> bool:
        return any(s in self.stages for s in ("track", "events", "annotate"))

    def _node(self, stage: str) -> SectionNode:
        return self.nodes[SECTION_OF_STAGE[stage]]

    def _make_outputs(self) -> None:
        self.outputs: dict[tuple[str, str], bridge.LazyPublisher] = {}
        self.label_info_publisher: Any = None
        for camera in self.camera_names:
            for stage, msg_type, name in (
                ("source", Image, "image_raw"),
                ("detect", Detection2DArray, "detections"),
                ("track", Detection2DArray, "tracks"),
                ("events", EventMsg, "events"),
                ("annotate", Image, "image_annotated"),
            ):
                if stage in self.stages:
                    node = self._node(stage)
                    self.outputs[(camera, stage)] = bridge.LazyPublisher(
                        node, msg_type, bridge.topic(camera, name), node.qos(), lambda p: []
                    )

    def _make_inputs(self) -> None:
        """A subscription for each stage whose upstream runs elsewhere (its first stage here)."""
        self.pairers: dict[str, bridge.ImageTrackPairer] = {}
        self._sequencers: dict[str, bridge.Sequencer] = {}
        for camera in self.camera_names:
            seq = self._sequencers[camera] = bridge.Sequencer()
            if "detect" in self.stages and "source" not in self.stages:
                node = self._node("detect")
                node.create_subscription(
                    Image,
                    bridge.topic(camera, "image_raw"),
                    lambda m, c=camera, s=seq: self._on_image(c, "detect", m, s()),
                    node.qos(),
                )
            if "track" in self.stages and "detect" not in self.stages:
                node = self._node("track")
                node.create_subscription(
                    Detection2DArray,
                    bridge.topic(camera, "detections"),
                    lambda m, c=camera: self._on_detections(c, "track", "detections", m),
                    node.qos(),
                )
            if "events" in self.stages and "track" not in self.stages:
                node = self._node("events")
                node.create_subscription(
                    Detection2DArray,
                    bridge.topic(camera, "tracks"),
                    lambda m, c=camera: self._on_detections(c, "events", "tracks", m),
                    node.qos(),
                )
            if "annotate" in self.stages and "track" not in self.stages and "events" not in self.stages:
                node = self._node("annotate")
                name = stage_name(camera, "annotate")
                self.pairers[camera] = bridge.ImageTrackPairer(
                    functools.partial(self._feed, name), functools.partial(self.health.dropped, name)
                )
                node.create_subscription(
                    Image,
                    bridge.topic(camera, "image_raw"),
                    lambda m, c=camera, s=seq: self._on_image(c, "annotate", m, s()),
                    node.qos(),
                )
                node.create_subscription(
                    Detection2DArray,
                    bridge.topic(camera, "tracks"),
                    lambda m, c=camera: self._on_detections(c, "annotate", "tracks", m),
                    node.qos(),
                )

    def _make_health_timer(self, period: float) -> None:
        self.stats_publishers = {
            camera: self.owner.create_publisher(PipelineStats, bridge.topic(camera, "stats"), 10)
            for camera in self.camera_names
        }
        self.diagnostics_publisher = self.owner.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.owner.create_timer(period, self.publish_health)

    def _on_label_info(self, msg: LabelInfo) -> None:
        by_id = {c.class_id: c.class_name for c in msg.class_map}
        labels = [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
        with self._lock:
            if self.pipeline is not None:
                return
        self._build(labels)

    def _build(self, labels: list[str] | None) -> None:
        wanted = {(c, s): p for (c, s), p in self.outputs.items()}

        def is_wanted(camera: str, stage: str) -> bool:
            publisher = wanted.get((camera, stage))
            return publisher is not None and publisher.wanted

        pipeline = Pipeline(self.sections, stages=self.stages, labels=labels, health=self.health, wanted=is_wanted)
        labels = pipeline.labels
        converters = {
            "source": bridge.image_out,
            "detect": bridge.detections_out(labels, "detections"),
            "track": bridge.detections_out(labels, "tracks"),
            "events": bridge.events_out,
            "annotate": bridge.annotated_out,
        }
        for (camera, stage), publisher in self.outputs.items():
            publisher.to_msgs = converters[stage]
            if stage == "detect":
                # One shared detector: each camera's publisher takes that camera's frames.
                pipeline.graph.tap("detect", functools.partial(self._camera_output, pipeline, camera, publisher))
            else:
                pipeline.graph.tap(stage_name(camera, stage), publisher)
        if "detect" in self.stages:
            node = self._node("detect")
            publisher = self.label_info_publisher = node.create_publisher(LabelInfo, "label_info", LATCHED)
            camera_id = self.sections["camera"]["camera_id"]
            publisher.publish(
                label_info(labels, Header(frame_id=camera_id), threshold=self.sections["detector"]["confidence"])
            )
        with self._lock:
            self.pipeline = pipeline
            pending, self._pending = self._pending, []
        if "source" not in self.stages:
            pipeline.start()  # fed from topics: runs until shut down
        for camera, stage, msg in pending:
            self._on_detections(camera, stage, "tracks" if stage != "track" else "detections", msg)

    @staticmethod
    def _camera_output(pipeline: Pipeline, camera: str, publisher: bridge.LazyPublisher, packet: FramePacket) -> None:
        """One shared detector: each camera's publisher takes that camera's frames."""
        if pipeline.camera_of(packet.meta.camera_id) in (camera, None):
            publisher(packet)

    # -- inputs --------------------------------------------------------------------------------------------

    def _feed(self, stage: str, packet: FramePacket) -> None:
        assert self.pipeline is not None
        if not self.pipeline.graph.feed(stage, packet):
            self.health.dropped(stage)

    def _on_image(self, camera: str, stage: str, msg: Image, sequence: int) -> None:
        name = stage_name(camera, stage)
        try:
            packet = bridge.image_packet(msg, sequence)
        except MessageError as exc:
            self.health.dropped(name)
            self.owner.get_logger().warning(
                f"dropping image on {bridge.topic(camera, 'image_raw')}: {exc}", throttle_duration_sec=5.0
            )
            return
        if self.pipeline is None:
            self.health.dropped(name)
            return
        if stage == "annotate":
            self.pairers[camera].image(packet)
        else:
            self._feed(name, packet)

    def _on_detections(self, camera: str, stage: str, field: str, msg: Detection2DArray) -> None:
        name = stage_name(camera, stage)
        with self._lock:
            if self.pipeline is None:  # detections can overtake the latched label_info
                if len(self._pending) < _MAX_PENDING:
                    self._pending.append((camera, stage, msg))
                else:
                    self.health.dropped(name)
                return
        field = "detections" if stage == "track" else "tracks"
        try:
            packet = bridge.detections_packet(msg, self.pipeline.labels, self._sequencers[camera](), field)
        except MessageError as exc:
            self.health.dropped(name)
            self.owner.get_logger().warning(f"dropping {field} message: {exc}", throttle_duration_sec=5.0)
            return
        if stage == "annotate":
            self.pairers[camera].tracks(packet)
        else:
            self._feed(name, packet)

    # -- health --------------------------------------------------------------------------------------------

    def publish_health(self) -> None:
        if not self.context.ok():
            return
        stamp = self.owner.get_clock().now().to_msg()
        statuses = []
        for camera in self.camera_names:
            report = self.health.report(camera if len(self.camera_names) > 1 else None)
            camera_id = camera or self.sections["camera"]["camera_id"]
            self.stats_publishers[camera].publish(stats_to_msg(report, camera_id, stamp))
            statuses.append(
                report_to_status(
                    report,
                    f"edge_vision: {self.owner.get_fully_qualified_name()}" + (f" {camera}" if camera else ""),
                    camera_id,
                )
            )
        self.diagnostics_publisher.publish(DiagnosticArray(header=Header(stamp=stamp), status=statuses))

    # -- running -------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Spin, run until every source ends (or, with no source here, until shut down), close everything.
        Returns the exit code."""
        executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        for node in self.nodes.values():
            executor.add_node(node)
        spinner = threading.Thread(target=self._spin, args=(executor,), name="ros-executor")
        spinner.start()
        try:
            if "source" in self.stages:
                self._wait_for_subscribers()
                assert self.pipeline is not None
                self.pipeline.start()
                while not self.pipeline.graph.wait(0.1):
                    if not self.context.ok():
                        self.pipeline.stop()
            else:
                while self.context.ok() and not self.health.failed:
                    time.sleep(0.1)
        finally:
            self.close()
            executor.shutdown(timeout_sec=5)
            spinner.join(10)
        return self.exit_code()

    @staticmethod
    def _spin(executor: MultiThreadedExecutor) -> None:
        with contextlib.suppress(ExternalShutdownException):  # shut down by a signal: run() sees it and stops
            executor.spin()

    def _wait_for_subscribers(self, timeout: float = 30.0) -> None:
        """Replays and regression runs must not lose their first frames to DDS discovery."""
        wanted = self.sections["camera"]["wait_for_subscribers"]
        if not wanted:
            return
        publishers = [p for (_c, s), p in self.outputs.items() if s == "source"]
        deadline = time.monotonic() + timeout
        while any(p.publisher.get_subscription_count() < wanted for p in publishers) and self.context.ok():
            if time.monotonic() > deadline:
                self.owner.get_logger().warning(f"starting with fewer than {wanted} subscribers after {timeout:.0f} s")
                return
            time.sleep(0.02)
        # The writer sees a match slightly before the reader side has matched it back; a sample sent in
        # between is discarded by the reader, so give discovery a moment to settle.
        time.sleep(0.5)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            if self.context.ok():
                self.publish_health()  # the final figures, so a short run still reports them
                if "source" in self.stages and "detect" not in self.stages:
                    # Standalone camera: give reliable subscribers the last frames before the process exits.
                    for (_c, stage), publisher in self.outputs.items():
                        if stage == "source":
                            publisher.publisher.wait_for_all_acked(Duration(seconds=5))
            for line in self.report_lines():
                self.owner.get_logger().info(line)

    def report_lines(self) -> list[str]:
        report = self.health.report()
        lines = [f"{report.message}; {report.frames_processed} frames processed"]
        lines += [
            f"{s.name}: {s.processed} x {s.mean_ms:.2f} ms (p99 {s.p99_ms:.2f}), {s.errors} errors, {s.dropped} dropped"
            for s in report.stages
        ]
        return lines

    def exit_code(self) -> int:
        if self.pipeline is not None and self.pipeline.fatal is not None:
            return 2
        if self.health.failed or self.health.source_failed():
            return 1
        return 0

    def destroy(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.destroy_node()
        self.nodes.clear()


def failure_line(pipeline: RosPipeline) -> str | None:
    if pipeline.pipeline is not None and pipeline.pipeline.fatal is not None:
        return str(pipeline.pipeline.fatal)
    reasons = ([pipeline.health.failure] if pipeline.health.failure else []) + pipeline.health.source_failed()
    return "; ".join(reasons) or None


def main_for(stages: Collection[str] | None, args: list[str] | None = None) -> int:
    """One executable: build, run, and turn errors into one line and an exit code."""
    rclpy.init(args=args)
    pipeline: RosPipeline | None = None
    try:
        try:
            pipeline = RosPipeline(stages)
        except EdgeVisionError as exc:
            print(f"edge_vision: error: {exc}", file=sys.stderr)
            return 2
        code = pipeline.run()
        if code and (line := failure_line(pipeline)):
            print(f"edge_vision: error: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        if pipeline is not None:
            pipeline.destroy()
        if rclpy.ok():
            rclpy.shutdown()


def main(args: list[str] | None = None) -> None:
    """``ros2 run edge_vision pipeline_container --ros-args --params-file config/pipeline.yaml``"""
    sys.exit(main_for(None, args))


if __name__ == "__main__":
    main()
