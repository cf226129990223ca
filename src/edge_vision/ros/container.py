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

import functools
import logging
import signal
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
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core import config
from edge_vision.core.errors import EdgeVisionError
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.build import STAGES, Pipeline, stage_name
from edge_vision.core.runtime.health import Health
from edge_vision.ros import bridge
from edge_vision.ros.conversions import MessageError, label_info, report_to_status, stats_to_msg
from edge_vision.ros.node import ManagedSectionNode, SectionNode
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
        self._gaps: dict[str, bridge.GapCounter] = {}
        try:
            composed = stages is None or len(stages) > 1
            if composed:
                self.nodes["pipeline"] = ManagedSectionNode("pipeline", values=given.get("pipeline"), **kwargs)
            pipeline_values = (
                self.nodes["pipeline"].values if composed else config.resolve("pipeline", given.get("pipeline"))
            )
            if stages is None:
                stages = [s for s in STAGES if s not in pipeline_values["external"]]
            self.stages = [s for s in STAGES if s in stages]
            for stage in self.stages:
                section = SECTION_OF_STAGE[stage]
                # The node that owns the process's pipeline is the managed (lifecycle) one.
                kind = SectionNode if self.nodes else ManagedSectionNode
                self.nodes[section] = kind(section, values=given.get(section), **kwargs)
            self.sections: dict[str, Any] = {}
            for section in config.SCHEMA:
                if section in self.nodes:
                    self.sections[section] = self.nodes[section].values
                elif section == "pipeline":
                    self.sections[section] = pipeline_values
                else:
                    self.sections[section] = dict(given[section]) if section in given else config.resolve(section)
            config.check_cross(self.sections)
            cameras = config.camera_sections(self.sections)
            self.camera_names = list(cameras)
            self.camera_ids = {name: camera["camera_id"] for name, camera in cameras.items()}
            self.device_id = config.device_id(self.sections)
            self.health = Health(error_budget=pipeline_values["error_budget"])
            owner = next(iter(self.nodes.values()))
            assert isinstance(owner, ManagedSectionNode)
            self.owner = owner
            self.owner_name = owner.get_fully_qualified_name()  # the node's handle is gone after a shutdown
            self.active = False
            self.started = False
            self.finished = threading.Event()  # shutdown transition, or a pipeline that has nothing left to do
            self._labels: list[str] | None = None
            self.configured = False
            self._make_outputs()
            self._make_inputs()
            self._make_health_timer(pipeline_values["stats_period"])
            if self._needs_labels() and "detect" not in self.stages:
                self.owner.create_subscription(LabelInfo, "label_info", self._on_label_info, LATCHED)
            for node in self.nodes.values():
                node.on_change = self._on_parameters
            owner.transitions.update(
                configure=self._on_configure,
                activate=self._on_activate,
                deactivate=self._on_deactivate,
                cleanup=self._on_cleanup,
                shutdown=self._on_shutdown,
            )
            if self.owner.values["autostart"]:
                self._configure()  # errors raise here: one line and exit code 2
                owner.trigger_configure()
                owner.trigger_activate()
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
            self._sequencers[camera] = bridge.Sequencer()
            if "detect" in self.stages and "source" not in self.stages:
                self._subscribe_images(camera, "detect")
            if "track" in self.stages and "detect" not in self.stages:
                self._subscribe_detections(camera, "track", "detections")
            if "events" in self.stages and "track" not in self.stages:
                self._subscribe_detections(camera, "events", "tracks")
            if "annotate" in self.stages and "track" not in self.stages and "events" not in self.stages:
                name = stage_name(camera, "annotate")
                self.pairers[camera] = bridge.ImageTrackPairer(
                    functools.partial(self._feed, name), functools.partial(self.health.dropped, name)
                )
                self._subscribe_images(camera, "annotate")
                self._subscribe_detections(camera, "annotate", "tracks")

    def _subscribe_images(self, camera: str, stage: str) -> None:
        node = self._node(stage)
        sequence = self._sequencers[camera]
        if node.values["image_transport"] == "compressed":
            node.create_subscription(
                CompressedImage,
                bridge.topic(camera, "image_raw/compressed"),
                lambda m: self._on_image(camera, stage, m, sequence()),
                node.input_qos(),
            )
        else:
            node.create_subscription(
                Image,
                bridge.topic(camera, "image_raw"),
                lambda m: self._on_image(camera, stage, m, sequence()),
                node.input_qos(),
            )

    def _subscribe_detections(self, camera: str, stage: str, topic: str) -> None:
        node = self._node(stage)
        node.create_subscription(
            Detection2DArray,
            bridge.topic(camera, topic),
            lambda m: self._on_detections(camera, stage, m),
            node.input_qos(),
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
        self._labels = [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
        if self.configured and self.pipeline is None:
            self._build(self._labels)

    def _on_parameters(self, section: str, values: dict[str, Any]) -> None:
        """A live parameter change: the running pipeline validates and takes it on the next frame."""
        with self._lock:
            pipeline = self.pipeline
        if pipeline is not None:
            pipeline.reconfigure(section, values)
        self.sections[section] = values

    # -- lifecycle -----------------------------------------------------------------------------------------

    def _configure(self) -> None:
        """Load the model and open the sources (or, fed from topics, wait for label_info to do so)."""
        self.configured = True
        if self.pipeline is None and ("detect" in self.stages or not self._needs_labels() or self._labels):
            self._build(self._labels)

    def _on_configure(self) -> bool:
        try:
            self._configure()
        except EdgeVisionError as exc:
            self.configured = False
            self.owner.get_logger().error(f"configure failed: {exc}")
            return False
        return True

    def _on_activate(self) -> bool:
        self.active = True
        if self.pipeline is not None:
            self.pipeline.graph.resume()
            if "source" not in self.stages:
                self._start()
        return True

    def _on_deactivate(self) -> bool:
        self.active = False
        if self.pipeline is not None:
            self.pipeline.graph.pause()
        return True

    def _on_cleanup(self) -> bool:
        self.active = False
        self.configured = False
        with self._lock:
            pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()
        self.started = False
        return True

    def _on_shutdown(self) -> bool:
        self._on_cleanup()
        self.finished.set()
        return True

    def _start(self) -> None:
        if self.pipeline is not None and not self.started:
            self.started = True
            self.pipeline.start()

    def _build(self, labels: list[str] | None) -> None:
        wanted = {(c, s): p for (c, s), p in self.outputs.items()}

        def is_wanted(camera: str, stage: str) -> bool:
            publisher = wanted.get((camera, stage))
            return publisher is not None and publisher.wanted

        clock = self.owner.get_clock()
        pipeline = Pipeline(
            self.sections,
            stages=self.stages,
            labels=labels,
            health=self.health,
            wanted=is_wanted,
            clock=lambda: clock.now().nanoseconds,
        )
        labels = pipeline.labels
        # class_id as the class name (vision_msgs' advice, the default) or as the index into label_info.
        names = labels if self.sections["detector"]["class_id"] == "name" else []
        converters = {
            "source": bridge.image_out,
            "detect": bridge.detections_out(names, "detections"),
            "track": bridge.detections_out(names, "tracks"),
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
        for camera, parts in pipeline.cameras.items():
            # Calibration, where a source has one configured (live sources: camera.calibration_file or inline
            # K/D), as sensor_msgs/CameraInfo beside each image, with the image's header.
            calibration = getattr(parts.source, "camera_info", None)
            if calibration is not None:
                node = self._node("source")
                info = node.create_publisher(CameraInfo, bridge.topic(camera, "camera_info"), node.qos())
                pipeline.graph.tap(stage_name(camera, "source"), functools.partial(self._camera_info, parts, info))
        if "detect" in self.stages:
            node = self._node("detect")
            publisher = self.label_info_publisher = node.create_publisher(LabelInfo, "label_info", LATCHED)
            camera_id = self.sections["camera"]["camera_id"]
            stamp = node.get_clock().now().to_msg()
            threshold = self.sections["detector"]["confidence"]
            publisher.publish(label_info(labels, Header(stamp=stamp, frame_id=camera_id), threshold=threshold))
        with self._lock:
            self.pipeline = pipeline
            pending, self._pending = self._pending, []
        if "source" not in self.stages and self.active:
            self._start()  # fed from topics: runs until shut down
        for camera, stage, msg in pending:
            self._on_detections(camera, stage, msg)

    def _camera_info(self, parts: Any, publisher: Any, packet: FramePacket) -> None:
        if not self.context.ok() or not publisher.get_subscription_count():
            return
        calibration = parts.source.camera_info
        if calibration is None:
            return
        publisher.publish(bridge.camera_info_msg(calibration, bridge.header(packet.meta)))

    @staticmethod
    def _camera_output(pipeline: Pipeline, camera: str, publisher: bridge.LazyPublisher, packet: FramePacket) -> None:
        """One shared detector: each camera's publisher takes that camera's frames."""
        if pipeline.camera_of(packet.meta.camera_id) in (camera, None):
            publisher(packet)

    # -- inputs --------------------------------------------------------------------------------------------

    def _feed(self, stage: str, packet: FramePacket) -> None:
        pipeline = self.pipeline
        if pipeline is None or not self.started or not self.active:
            return  # inactive (lifecycle): inputs are ignored, not queued
        gaps = self._gaps.setdefault(stage, bridge.GapCounter())
        lost = gaps(packet.meta.stamp_ns)
        if lost:  # lost upstream (another process, DDS): shown as drops at this stage's input, WARN
            self.health.dropped(stage, lost)
        if not pipeline.graph.feed(stage, packet):
            self.health.dropped(stage)

    def _on_image(self, camera: str, stage: str, msg: Image | CompressedImage, sequence: int) -> None:
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

    def _on_detections(self, camera: str, stage: str, msg: Detection2DArray) -> None:
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
        try:
            self._publish_health()
        except RuntimeError:  # rclpy's RCLError: the context was shut down (SIGINT) between check and publish
            if self.context.ok():
                raise

    def _publish_health(self) -> None:
        if not self.context.ok():
            return
        stamp = self.owner.get_clock().now().to_msg()
        statuses = []
        for camera in self.camera_names:
            report = self.health.report(camera if len(self.camera_names) > 1 else None)
            camera_id = self.camera_ids[camera]
            self.stats_publishers[camera].publish(stats_to_msg(report, camera_id, stamp, self.device_id))
            statuses.append(
                report_to_status(
                    report,
                    f"edge_vision: {self.owner.get_fully_qualified_name()}" + (f" {camera}" if camera else ""),
                    camera_id,
                    self.device_id,
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
            while self.context.ok() and not self.finished.is_set():
                pipeline = self.pipeline
                if pipeline is not None and "source" in self.stages:
                    if self.active and not self.started and self._clock_running():
                        self._wait_for_subscribers()
                        self._start()
                    if self.started and pipeline.graph.wait(0):
                        break  # every source ended
                elif self.health.failed:
                    break
                time.sleep(0.05)
        finally:
            _ignore_interrupts()
            self.close()
            executor.shutdown(timeout_sec=5)
            spinner.join(10)
        return self.exit_code()

    @staticmethod
    def _spin(executor: MultiThreadedExecutor) -> None:
        try:
            executor.spin()
        except (ExternalShutdownException, RuntimeError):  # RuntimeError: rclpy's RCLError
            # Shut down by a signal (the context may go invalid mid-wait): run() sees it, drains and exits.
            if executor.context.ok():
                raise

    def _clock_running(self) -> bool:
        """With use_sim_time, frames are stamped on /clock: wait for its first message before decoding."""
        return not self.owner.get_parameter("use_sim_time").value or self.owner.get_clock().now().nanoseconds > 0

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
                if self.context.ok():
                    self.owner.get_logger().info(line)
                else:  # shut down by a signal: rosout is gone, the console is not
                    print(f"[{self.owner_name}] {line}", file=sys.stderr)

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


def _ignore_interrupts() -> None:
    """Once stopping, a second SIGINT (a terminal's Ctrl+C reaches every process of the group, and ros2 launch
    forwards one more) must not interrupt the drain and leave half-written outputs; SIGTERM and SIGKILL
    still end the process."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def failure_line(pipeline: RosPipeline) -> str | None:
    if pipeline.pipeline is not None and pipeline.pipeline.fatal is not None:
        return str(pipeline.pipeline.fatal)
    return pipeline.health.problems() or None


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
        _ignore_interrupts()
        if pipeline is not None:
            pipeline.destroy()
        if rclpy.ok():
            rclpy.shutdown()


def main(args: list[str] | None = None) -> None:
    """``ros2 run edge_vision pipeline_container --ros-args --params-file config/pipeline.yaml``"""
    sys.exit(main_for(None, args))


if __name__ == "__main__":
    main()
