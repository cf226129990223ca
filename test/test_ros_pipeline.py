"""The pipeline as ROS 2 nodes: composed zero-copy hand-off, lazy publishing, what an outside subscriber
receives, and separate processes producing the same results as the composed pipeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from conftest import CONFIG
from edge_vision.core import config
from edge_vision.core.packet import FramePacket
from edge_vision.ros.container import ComposedPipeline
from edge_vision.ros.processes import start_nodes, stop_nodes
from edge_vision_msgs.msg import Event as EventMsg
from edge_vision_msgs.msg import PipelineStats

RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


def sections(**camera: Any) -> dict[str, dict[str, Any]]:
    result = config.load_file(CONFIG)
    result["camera"].update(camera)
    result["visualizer"]["video_path"] = ""
    result["events"]["jsonl_path"] = ""
    return result


class Listener:
    """A separate ROS participant (own context) collecting messages, spun on a background thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = rclpy.create_node("test_listener", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def listen(self, topic: str, msg_type: Any, qos: QoSProfile = RELIABLE) -> list[Any]:
        store: list[Any] = self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, store.append, qos)
        return store

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for condition {state()}")
        time.sleep(0.05)


@pytest.fixture()
def listener():  # type: ignore[no-untyped-def]
    listener = Listener()
    yield listener
    listener.close()


def test_composed_pipeline_passes_the_decoder_buffer_without_copy(ros_context: object, video: Path) -> None:
    pipeline = ComposedPipeline(sections(max_frames=25), context=ros_context)  # type: ignore[arg-type]
    seen: dict[str, dict[int, np.ndarray]] = {"camera": {}, "detector": {}, "tracker": {}}

    def tap(stage: str) -> Callable[[FramePacket], None]:
        return lambda packet: seen[stage].__setitem__(packet.frame.sequence, packet.frame.image)

    pipeline.camera.image_out.taps.append(tap("camera"))
    pipeline.detector.detections_out.taps.append(tap("detector"))
    pipeline.tracker.tracks_out.taps.append(tap("tracker"))
    try:
        summary = pipeline.run()
        outputs = [pipeline.camera.image_out, pipeline.detector.detections_out, pipeline.tracker.tracks_out]
        published = [output.published for output in outputs]
    finally:
        pipeline.close()
    assert summary.frames == 25 and len(seen["tracker"]) == 25
    for sequence, decoded in seen["camera"].items():
        # The very array the decoder produced, not an equal copy.
        assert seen["detector"][sequence] is decoded
        assert seen["tracker"][sequence] is decoded
    assert published == [0, 0, 0], "nothing may be serialised for topics nobody subscribes to"


def make_video_with_empty_start(path: Path, source: Path, empty: int, real: int) -> None:
    """Gray frames (nothing to detect) followed by real frames of the sample video."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.bit_rate = 4_000_000
        frames = src.decode(video=0)
        for i in range(empty + real):
            image = np.full((576, 768, 3), 128, np.uint8) if i < empty else next(frames).to_ndarray(format="bgr24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_subscriber_gets_detections_with_source_header_and_empty_arrays(
    ros_context: object, video: Path, tmp_path: Path, listener: Listener
) -> None:
    clip = tmp_path / "clip.mp4"
    make_video_with_empty_start(clip, video, empty=8, real=16)
    detections = listener.listen("detections", Detection2DArray)
    tracks = listener.listen("tracks", Detection2DArray)
    images = listener.listen("image_raw", Image)
    stats = listener.listen("stats", PipelineStats, QoSProfile(depth=10))
    diagnostics = listener.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=10))
    pipeline = ComposedPipeline(sections(uri=str(clip), camera_id="cam_front", rate=2.0), context=ros_context)  # type: ignore[arg-type]
    stamps: dict[int, int] = {}
    pipeline.camera.image_out.taps.append(lambda p: stamps.__setitem__(p.frame.sequence, p.frame.stamp_ns))
    try:
        wait_for(
            lambda: pipeline.tracker.tracks_out.has_ros_subscribers and pipeline.camera.image_out.has_ros_subscribers
        )
        time.sleep(0.5)  # the reader side matches a moment after the writer does
        pipeline.run()
        wait_for(lambda: len(tracks) == 24 and len(detections) == 24 and len(images) == 24)
        late = listener.listen(
            "label_info", LabelInfo, QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        )
        wait_for(lambda: len(late) == 1)
        wait_for(lambda: len(stats) >= 1 and len(diagnostics) >= 1)
    finally:
        pipeline.close()
    stages = {stage.name for stage in stats[-1].stages}
    assert {"decode", "preprocess", "inference", "postprocess", "tracking", "events"} <= stages
    assert stats[-1].frames_processed > 0
    health = diagnostics[-1].status[0]
    assert health.hardware_id == "camera" and {kv.key for kv in health.values} >= {"fps", "inference_mean_ms"}
    expected_stamps = [stamps[i] for i in range(24)]
    for msg in detections:
        assert msg.header.frame_id == "cam_front"
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in detections] == expected_stamps
    assert all(len(m.detections) == 0 for m in detections[:8]), "empty frames still get an (empty) array"
    assert all(len(m.detections) > 0 for m in detections[8:])
    people = [d for m in detections[8:] for d in m.detections if d.results[0].hypothesis.class_id == "person"]
    assert len(people) > 16
    for d in people:
        assert 0 <= d.bbox.center.position.x <= 768 and 0 <= d.bbox.center.position.y <= 576  # source pixels
        assert d.header.frame_id == "cam_front"
    tracked = [d.id for m in tracks[8:] for d in m.detections]
    assert tracked and all(i.isdigit() and int(i) > 0 for i in tracked)
    assert images[10].encoding == "bgr8" and images[10].width == 768 and len(images[10].data) == 768 * 576 * 3
    assert [c.class_name for c in late[0].class_map][:3] == ["person", "bicycle", "car"]


def collect_composed(
    run_sections: dict[str, dict[str, Any]], context: object
) -> tuple[list[Any], list[Any], list[Any]]:
    pipeline = ComposedPipeline(run_sections, context=context)  # type: ignore[arg-type]
    detections: list[Any] = []
    tracks: list[Any] = []
    events: list[Any] = []
    pipeline.detector.detections_out.taps.append(lambda p: detections.append(p.detections))
    pipeline.tracker.tracks_out.taps.append(lambda p: tracks.append(p.tracks))
    pipeline.events.events_out.taps.append(events.append)
    try:
        pipeline.run()
    finally:
        pipeline.close()
    return detections, tracks, events


def test_separate_processes_match_composed(
    ros_context: object, video: Path, tmp_path: Path, listener: Listener
) -> None:
    frames = 40
    run_sections = sections(max_frames=frames, rate=2.0, wait_for_subscribers=2)  # detector and visualizer
    composed_detections, composed_tracks, composed_events = collect_composed(run_sections, ros_context)

    from edge_vision.ros.conversions import msg_to_detections

    params = config.write_ros_parameters(
        {k: v for k, v in run_sections.items() if k != "pipeline"}, tmp_path / "p.yaml"
    )
    detections = listener.listen("detections", Detection2DArray)
    tracks = listener.listen("tracks", Detection2DArray)
    events = listener.listen("events", EventMsg)
    annotated = listener.listen("image_annotated", Image)
    downstream = start_nodes(params, ("detector", "tracker", "events", "visualizer"), log_dir=tmp_path)
    try:
        # Every stage up and subscribed before the first frame: frames published earlier would be lost.
        graph = listener.node
        wait_for(
            lambda: (
                graph.count_subscribers("image_raw") >= 2
                and graph.count_subscribers("detections") >= 2
                and graph.count_subscribers("tracks") >= 3
                and graph.count_publishers("events") >= 1
            ),
            60,
        )
        camera = start_nodes(params, ("camera",), log_dir=tmp_path)
        wait_for(lambda: len(tracks) >= frames, 90, lambda: (len(detections), len(tracks), len(events), len(annotated)))
        assert camera[0].wait(30) == 0
        wait_for(
            lambda: len(events) >= len(composed_events) and len(annotated) >= frames - 2,
            30,
            lambda: (len(composed_events), len(events), len(annotated)),
        )
    finally:
        stop_nodes(downstream)
    labels = [line.strip() for line in Path(CONFIG.parent.parent / "models/coco80_names.txt").read_text().splitlines()]
    assert len(detections) == frames
    for ours, theirs in zip(composed_detections, detections, strict=True):
        other = msg_to_detections(theirs, labels)
        assert other.class_ids.tolist() == ours.class_ids.tolist()
        np.testing.assert_allclose(other.xyxy, ours.xyxy, atol=1e-3)
        np.testing.assert_allclose(other.scores, ours.scores, atol=1e-6)
    matching_ids = sum(
        msg_to_detections(theirs, labels).track_ids.tolist() == ours.track_ids.tolist()
        for ours, theirs in zip(composed_tracks, tracks, strict=True)
    )
    assert matching_ids == frames
    assert composed_events, "the sample's zone sees people enter within 40 frames"
    assert [(e.kind, e.rule, e.track_id, e.sequence) for e in composed_events] == [
        (e.kind, e.rule, e.track_id, e.sequence) for e in events
    ]
    assert annotated[0].width == 768 and annotated[0].height == 576


def test_malformed_images_are_rejected_and_the_node_keeps_going(
    ros_context: object, video: Path, listener: Listener
) -> None:
    from edge_vision.core.sources.file import FileSource
    from edge_vision.ros.conversions import frame_to_image
    from edge_vision.ros.nodes.detector import DetectorNode

    node = DetectorNode(values=config.load_file(CONFIG)["detector"], context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)  # type: ignore[arg-type]
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    detections = listener.listen("detections", Detection2DArray)
    publisher = listener.node.create_publisher(Image, "image_raw", RELIABLE)
    try:
        wait_for(lambda: publisher.get_subscription_count() > 0 and node.detections_out.has_ros_subscribers)
        with FileSource(str(video), max_frames=1) as source:
            good = frame_to_image(next(source.frames()))
        wrong_encoding = frame_to_image(next(FileSource(str(video), max_frames=1).frames()))
        wrong_encoding.encoding = "yuv422_yuy2"
        truncated = frame_to_image(next(FileSource(str(video), max_frames=1).frames()))
        truncated.data = truncated.data[:1000]
        for msg in (wrong_encoding, truncated, good):
            publisher.publish(msg)
        wait_for(lambda: len(detections) == 1)
        time.sleep(0.3)
    finally:
        executor.shutdown()
        node.close()
        node.destroy_node()
    assert node.rejected == 2 and len(detections) == 1
    assert detections[0].header.stamp == good.header.stamp and len(detections[0].detections) > 3


def test_container_executable_reads_a_ros_parameter_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    run_sections = sections(max_frames=30)
    params = config.write_ros_parameters(run_sections, tmp_path / "params.yaml")
    command = [sys.executable, "-m", "edge_vision.ros.container", "--ros-args", "--params-file", str(params)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "frames: 30 " in result.stdout and "person" in result.stdout

    run_sections["detector"]["confidence"] = 2.0  # out of the declared range
    params = config.to_ros_parameters(run_sections)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(params))
    command[-1] = str(tmp_path / "bad.yaml")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "edge_vision: error: detector.confidence:" in result.stderr and "out of range" in result.stderr
    assert "Traceback" not in result.stderr
