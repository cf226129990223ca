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
import os
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
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_vision.core import config
from edge_vision.core.errors import EdgeVisionError
from edge_vision.core.ops import sdnotify
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.build import STAGES, Pipeline, stage_name
from edge_vision.core.runtime.health import OK, WARN, Health
from edge_vision.ros import bridge
from edge_vision.ros.conversions import (
    MessageError,
    label_info,
    labels_from_msg,
    report_to_status,
    stamp_to_ns,
    stats_to_msg,
)
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
        self._invalid_outputs = (0, 0.0)  # detector output rows dropped so far (NaN/inf...), when that last grew
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
            # Malformed / hostile input messages: dropped, counted and reported, never raised into the executor.
            self.guard = bridge.InputGuard(self.health, lambda line: self.owner.get_logger().warning(line))
            self.active = False
            self.started = False
            self.finished = threading.Event()  # shutdown transition, or a pipeline that has nothing left to do
            self.stop_report: dict[str, Any] | None = None  # after a stop signal: which, drain time, what was left
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
        try:
            labels = labels_from_msg(msg)
        except MessageError as exc:
            self.guard.reject(None, "", self.owner.resolve_topic_name("label_info"), str(exc))
            return
        self._labels = labels
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
        if pipeline.rollout is not None:
            pipeline.rollout.on_rollback = self._on_model_rollback
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

    def _on_model_rollback(self, model: str, reason: str) -> None:
        """A roll-out failed its probation and the old model runs again: ``detector.model`` says so too (the
        change is a no-op for the pipeline, which already runs ``model``)."""
        node = self._node("detect")
        node.get_logger().warning(f"model rolled back to {model}: {reason}")
        node.set_parameters([Parameter("model", value=model)])

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
        self._arrived(stage, packet.meta.stamp_ns)
        if not pipeline.graph.feed(stage, packet):
            self.health.dropped(stage)

    def _arrived(self, stage: str, stamp_ns: int, trusted: bool = True) -> None:
        lost = self._gaps.setdefault(stage, bridge.GapCounter())(stamp_ns, trusted)
        if lost:  # lost upstream (another process, DDS): shown as drops at this stage's input, WARN
            self.health.dropped(stage, lost)

    def _reject(self, stage: str, camera: str, topic: str, msg: Any, exc: Exception) -> None:
        """A message that cannot be used: dropped, counted once (its stamp still tells the gap counter it came,
        so it is not counted again as lost) and reported; the node goes on."""
        topic = self.owner.resolve_topic_name(topic)  # as an operator sees it: /cam1/detections
        self.guard.reject(stage, camera, topic, str(exc) if isinstance(exc, MessageError) else repr(exc))
        if self.pipeline is not None and self.started and self.active and not stage.endswith("annotate"):
            self._arrived(stage, stamp_to_ns(msg.header.stamp), trusted=False)

    def _on_image(self, camera: str, stage: str, msg: Image | CompressedImage, sequence: int) -> None:
        name = stage_name(camera, stage)
        try:
            packet = bridge.image_packet(msg, sequence)
        except Exception as exc:  # MessageError names the problem; anything else must not end the executor either
            topic = bridge.topic(camera, "image_raw/compressed" if isinstance(msg, CompressedImage) else "image_raw")
            self._reject(name, camera, topic, msg, exc)
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
        except Exception as exc:  # MessageError names the problem; anything else must not end the executor either
            self._reject(name, camera, bridge.topic(camera, "detections" if stage == "track" else "tracks"), msg, exc)
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
        self.guard.refresh()
        self._source_warnings()
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

    def run(self, stop: StopSignals | None = None) -> int:
        """Spin, run until every source ends (or, with no source here, until shut down), close everything.
        Returns the exit code.

        stop: the process's ``StopSignals`` (the executables install theirs before building); None: installed
        here for the run when called on the main thread. A stop signal drains the pipeline (within
        ``pipeline.stop_timeout_s``), finishes every output and returns 0 unless something failed;
        ``stop_report`` says how it went."""
        own = None
        if stop is None:
            own = stop = StopSignals()
            own.install()
        executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        for node in self.nodes.values():
            executor.add_node(node)
        spinner = threading.Thread(target=self._spin, args=(executor,), name="ros-executor")
        spinner.start()
        stopping_at = 0.0
        try:
            while self.context.ok() and not self.finished.is_set():
                if stop.requested:
                    stopping_at = time.monotonic()
                    timeout = self.sections["pipeline"]["stop_timeout_s"]
                    self.owner.get_logger().info(
                        f"{stop.requested}: stopping; draining queued frames (up to {timeout:g} s)"
                    )
                    break
                pipeline = self.pipeline
                if pipeline is not None and "source" in self.stages:
                    if self.active and not self.started and self._clock_running():
                        self._wait_for_subscribers()
                        self._start()
                    if self.started and pipeline.graph.wait(0):
                        break  # every source ended
                if self.health.failed:
                    break  # also with a source blocked behind a stuck stage (core/ops watchdog_action: exit)
                stop.wait(0.05)
        finally:
            if not stop.installed:
                _ignore_interrupts()
            sdnotify.stopping()  # systemd: the process is ending (a lifecycle cleanup alone is not)
            try:
                self.close()
            finally:
                if stop.requested:
                    pipeline = self.pipeline
                    self.stop_report = {
                        "signal": stop.requested,
                        "drain_s": round(time.monotonic() - (stopping_at or stop.requested_at), 3),
                        "abandoned": dict(pipeline.graph.abandoned) if pipeline is not None else {},
                    }
                executor.shutdown(timeout_sec=5)
                spinner.join(10)
                if own is not None:
                    own.restore()
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

    def _source_warnings(self, final: bool = False) -> None:
        """What a source noticed without stopping (a truncated file, undecodable packets): a WARN condition of
        its camera, so it shows on /diagnostics, in the final report and in summary.json. Likewise model
        outputs that were not detections (NaN/inf, class ids beyond the labels): WARN ``model_output`` while
        they keep coming (cleared 5 s after the last; ``final``: kept, for the run's report)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        for camera, parts in pipeline.cameras.items():
            warnings = list(getattr(parts.source, "warnings", None) or ())
            if warnings:
                self.health.condition("source_warning", WARN, "; ".join(warnings), camera)
        if pipeline.detect is not None:
            invalid = sum(int(getattr(d, "invalid", 0)) for d in pipeline.detect.detectors)
            before, since = self._invalid_outputs
            now = time.monotonic()
            if invalid > before or (final and invalid):
                self._invalid_outputs = (invalid, now)
                message = f"dropped {invalid} model output rows so far: NaN/inf scores or boxes, or class ids beyond "
                self.health.condition("model_output", WARN, message + "the labels (check the model export)")
            elif invalid and now - since > self.health.warn_hold_s:
                self.health.condition("model_output", OK)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self._source_warnings(final=True)
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
        if self.health.failed:
            return self.health.failure_code  # 1, or what a guard asked for (core/ops: 3 memory, 4 watchdog)
        if self.health.source_failed():
            return 1
        return 0

    def destroy(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.destroy_node()
        self.nodes.clear()


class StopSignals:
    """SIGTERM and SIGINT (systemd, docker stop, ros2 launch, Ctrl+C) ask for a graceful stop: the first one sets
    ``requested`` and the run loop then stops the sources, drains the pipeline within ``pipeline.stop_timeout_s``,
    finishes the video, events and summary and exits 0. Later ones are noted on stderr and ignored, so a second
    Ctrl+C or a launcher's escalation never interrupts the drain half-way (SIGKILL still ends the process; the
    outputs are crash-safe and recovered on the next start).

    Both signals behave the same everywhere. rclpy (Kilted) installs, on its default context only
    (``SignalHandlerOptions.ALL``), a handler for SIGINT *and* SIGTERM that shuts the context down at once (the
    drain could then publish nothing more); a private context (``edge-vision run``) gets none, so SIGTERM
    killed the process outright (exit 143, no summary, hidden temp files). The executables therefore init
    rclpy with ``SignalHandlerOptions.NO`` and install this instead."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None  # name of the first signal
        self.requested_at = 0.0
        self.installed = False
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> bool:
        """Take SIGINT and SIGTERM (main thread only: Python delivers signals there); False elsewhere."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self.installed = True
        return True

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            # None: the previous handler was not set from Python (rclpy's C handler): back to Python's default.
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, previous if previous is not None else default)
        self._previous.clear()
        self.installed = False

    def request(self, reason: str) -> None:
        """Ask for the stop from code (a supervisor thread) as a signal would."""
        if self.requested is None:
            self.requested, self.requested_at = reason, time.monotonic()
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            self.request(name)
            return
        # os.write, not print: a handler that prints while the main thread prints raises "reentrant call".
        os.write(2, f"[edge_vision] {name} while stopping on {self.requested}: ignored, the drain goes on\n".encode())


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
    """One executable: build, run, and turn errors into one line and an exit code. SIGINT/SIGTERM stop it
    gracefully from the start (``StopSignals``, kept until the process exits)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals()
    stop.install()
    pipeline: RosPipeline | None = None
    try:
        try:
            pipeline = RosPipeline(stages)
        except EdgeVisionError as exc:
            print(f"edge_vision: error: {exc}", file=sys.stderr)
            return 2
        code = pipeline.run(stop)
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
