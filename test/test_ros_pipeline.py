"""The pipeline as ROS 2 nodes, on real rclpy / Fast DDS (localhost), the real sample video and the real model:
composed zero-copy hand-off, lazy publishing, what an outside subscriber receives, separate processes producing
the same tracks and events as the composed pipeline (with and without lost detections), two cameras in one
process, and health (stats, /diagnostics, exit codes) when a stage fails or frames are dropped.

Nothing waits on a fixed sleep: a test starts its data only once both ends of every link it depends on have
matched (the writer sees the reader and the reader sees the writer), and ends once the data it expects is in."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from conftest import CONFIG, LABELS
from edge_vision.core import config, plugins
from edge_vision.core.detections import Detections
from edge_vision.core.frame import FrameMeta
from edge_vision.core.packet import FramePacket
from edge_vision.core.sources.file import FileSource
from edge_vision.core.tracking.bytetrack import ByteTrack
from edge_vision.ros.container import RosPipeline
from edge_vision.ros.conversions import frame_to_image, msg_to_detections, stamp_to_ns
from edge_vision.ros.processes import start_nodes, stop_nodes
from edge_vision_msgs.msg import Event as EventMsg
from edge_vision_msgs.msg import PipelineStats
from ros_participant import Participant, diagnostic_values

RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
OK, WARN, ERROR = b"\x00", b"\x01", b"\x02"


# -- helpers ------------------------------------------------------------------------------------------------


def sections(**camera: Any) -> dict[str, dict[str, Any]]:
    """The shipped config with camera overrides, writing no file (no video, no events.jsonl)."""
    result = config.load_file(CONFIG)
    result["camera"].update(camera)
    result["visualizer"]["video_path"] = ""
    result["events"]["actions"] = {}
    return result


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_params(run_sections: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """A ROS parameter file. rcl's parser rejects YAML aliases ("Will not support aliasing"), which
    ``yaml.safe_dump`` emits for the rule lists ``to_ros_parameters`` shares between events and visualizer."""
    path.write_text(yaml.dump(config.to_ros_parameters(run_sections), Dumper=_NoAliases, sort_keys=False))
    return path


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting; state: {state()}")
        time.sleep(0.02)


def track_ids(packet: FramePacket) -> list[int]:
    assert packet.tracks is not None
    ids: list[int] = packet.tracks.track_ids.tolist()
    return ids


def ns(msg: Any) -> int:
    return stamp_to_ns(msg.header.stamp)


class Listener(Participant):
    """A separate ROS participant (own context) collecting messages, spun on a background thread."""

    def __init__(self) -> None:
        super().__init__("test_listener")
        self.received: dict[str, list[Any]] = {}
        self.arrivals: dict[str, list[float]] = {}
        self.subscriptions: dict[str, Any] = {}
        self.spin()

    def listen(
        self,
        topic: str,
        msg_type: Any,
        qos: QoSProfile = RELIABLE,
        on_msg: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        store: list[Any] = self.received.setdefault(topic, [])
        times = self.arrivals.setdefault(topic, [])

        def receive(msg: Any) -> None:
            times.append(time.monotonic())
            store.append(msg)
            if on_msg is not None:
                on_msg(msg)

        self.subscriptions[topic] = self.node.create_subscription(msg_type, topic, receive, qos)
        return store

    def hears(self, *topics: str) -> bool:
        """Each of our subscriptions to ``topics`` has matched a publisher (the reader side of the link)."""
        return all(self.subscriptions[t].get_publisher_count() > 0 for t in topics)


@pytest.fixture()
def listener() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def outputs_matched(ros: RosPipeline, stages: Iterable[str]) -> bool:
    """Every output topic of ``stages`` has matched a subscriber (the writer side of the link)."""
    wanted = set(stages)
    return all(p.publisher.get_subscription_count() > 0 for (_c, s), p in ros.outputs.items() if s in wanted)


def running(processes: Iterable[subprocess.Popen[bytes]], log_dir: Path) -> bool:
    """True while every process runs; fails the test at once, with the logs, when one has exited."""
    ended = [p.args for p in processes if p.poll() is not None]
    if ended:
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in sorted(log_dir.glob("*.log"))}
        raise AssertionError(f"node process(es) ended early: {ended}; logs: {logs}")
    return True


def run_in_background(ros: RosPipeline) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(ros.run()), name="test-run", daemon=True)
    thread.start()
    return thread, codes


def make_clip(path: Path, source: Path, *, gray: int = 0, first: int = 0, count: int = 0) -> Path:
    """``gray`` flat gray frames (nothing to detect), then ``count`` frames of ``source`` from frame ``first``."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.bit_rate = 4_000_000
        frames = src.decode(video=0)
        for _ in range(first):
            next(frames)
        for i in range(gray + count):
            image = np.full((576, 768, 3), 128, np.uint8) if i < gray else next(frames).to_ndarray(format="bgr24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# -- composed: zero copy, lazy publishing, what a subscriber gets --------------------------------------------


def test_composed_pipeline_passes_the_decoder_buffer_without_copy(ros_context: Context, video: Path) -> None:
    ros = RosPipeline(sections=sections(max_frames=25), context=ros_context)
    seen: dict[str, dict[int, np.ndarray | None]] = {"source": {}, "detect": {}, "track": {}}

    def keep(store: dict[int, np.ndarray | None]) -> Callable[[FramePacket], None]:
        return lambda packet: store.__setitem__(packet.meta.sequence, packet.image)

    try:
        assert ros.pipeline is not None
        for stage, store in seen.items():
            ros.pipeline.graph.tap(stage, keep(store))
        assert ros.run() == 0
        published = {stage: publisher.published for (_c, stage), publisher in ros.outputs.items()}
        processed = ros.health.report().frames_processed
    finally:
        ros.destroy()
    assert processed == 25 and len(seen["source"]) == 25 and len(seen["track"]) == 25
    for sequence, decoded in seen["source"].items():
        assert isinstance(decoded, np.ndarray)
        # The very array the decoder produced, not an equal copy.
        assert seen["detect"][sequence] is decoded
        assert seen["track"][sequence] is decoded
    assert set(published) == {"source", "detect", "track", "events", "annotate"}
    assert all(count == 0 for count in published.values()), f"published without subscribers: {published}"


def test_subscriber_gets_detections_with_source_header_and_empty_arrays(
    ros_context: Context, video: Path, tmp_path: Path, listener: Listener
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", video, gray=8, count=16)
    detections = listener.listen("detections", Detection2DArray)
    tracks = listener.listen("tracks", Detection2DArray)
    images = listener.listen("image_raw", Image)
    stats = listener.listen("stats", PipelineStats)
    diagnostics = listener.listen("/diagnostics", DiagnosticArray)
    run_sections = sections(uri=str(clip), camera_id="cam_front", rate=2.0, qos_depth=30)
    for section in ("detector", "tracker"):
        run_sections[section]["qos_depth"] = 30  # every message of the run fits the writers' history
    ros = RosPipeline(sections=run_sections, context=ros_context)
    stamps: dict[int, int] = {}
    try:
        assert ros.pipeline is not None
        ros.pipeline.graph.tap("source", lambda p: stamps.__setitem__(p.meta.sequence, p.meta.stamp_ns))
        # Both ends of every link matched before the first frame: a frame sent earlier would be lost.
        wait_for(
            lambda: (
                outputs_matched(ros, ("source", "detect", "track"))
                and ros.stats_publishers[""].get_subscription_count() > 0
                and ros.diagnostics_publisher.get_subscription_count() > 0
                and listener.hears("detections", "tracks", "image_raw", "stats", "/diagnostics")
            )
        )
        assert ros.run() == 0
        wait_for(
            lambda: len(tracks) == 24 and len(detections) == 24 and len(images) == 24,
            state=lambda: (len(detections), len(tracks), len(images)),
        )
        # A subscriber that comes late still gets the labels (transient local).
        late = listener.listen("label_info", LabelInfo, LATCHED)
        wait_for(lambda: len(late) == 1)
        # The final figures are published when the run closes.
        wait_for(lambda: bool(stats) and stats[-1].frames_processed == 24, state=lambda: stats[-1:])
        wait_for(lambda: bool(diagnostics))
    finally:
        ros.destroy()
    stages = {stage.name for stage in stats[-1].stages}
    assert {"source", "detect", "track", "events"} <= stages
    assert stats[-1].camera_id == "cam_front" and stats[-1].frames_decoded == 24
    assert next(s for s in stats[-1].stages if s.name == "detect").processed == 24
    health = diagnostics[-1].status[0]
    assert health.hardware_id == "cam_front" and health.level == OK, health
    assert {"fps", "frames_processed", "detect_p50_ms", "track_p99_ms"} <= set(diagnostic_values(health))
    assert diagnostic_values(health)["frames_processed"] == "24"
    expected_stamps = [stamps[i] for i in range(24)]
    for msg in (*detections, *tracks, *images):
        assert msg.header.frame_id == "cam_front"
    assert [ns(m) for m in detections] == expected_stamps
    assert [ns(m) for m in tracks] == expected_stamps
    assert [ns(m) for m in images] == expected_stamps
    assert all(len(m.detections) == 0 for m in detections[:8]), "empty frames still get an (empty) array"
    assert all(len(m.detections) == 0 for m in tracks[:8])
    assert all(len(m.detections) > 0 for m in detections[8:])
    people = [d for m in detections[8:] for d in m.detections if d.results[0].hypothesis.class_id == "person"]
    assert len(people) > 16
    for d in people:
        assert 0 <= d.bbox.center.position.x <= 768 and 0 <= d.bbox.center.position.y <= 576  # source pixels
        assert d.bbox.size_x > 8 and d.bbox.size_y > 16  # not normalised, not model-input scaled to nothing
        assert d.header.frame_id == "cam_front"
    tracked = [d.id for m in tracks[8:] for d in m.detections]
    assert tracked and all(i.isdigit() and int(i) > 0 for i in tracked)
    assert images[10].encoding == "bgr8" and images[10].width == 768 and images[10].height == 576
    assert len(images[10].data) == 768 * 576 * 3
    assert [c.class_name for c in late[0].class_map][:3] == ["person", "bicycle", "car"]
    assert late[0].threshold == pytest.approx(run_sections["detector"]["confidence"])


# -- separate processes == composed, with and without lost detections ---------------------------------------

FRAMES = 60  # every 3rd frame of the first 180: 15 events on the sample's line and zone
EVERY_NTH = 3


def frame_ns(video: Path) -> int:
    """The media-clock period of ``video``'s frames, as the file source stamps them."""
    with FileSource(str(video), max_frames=1) as source:
        return int(1e9 / source.fps)


def lost(relative_ns: int, period_ns: int) -> bool:
    """The frames whose detections are lost on purpose: one in ten of those processed (every 3rd source frame),
    picked by media time since the first frame, so both modes lose the same ones."""
    index = round(relative_ns / period_ns)
    return (index // EVERY_NTH) % 10 == 3


@dataclass
class Results:
    """Per frame (keyed by stamp relative to the run's first frame): detections, track ids; and the events."""

    detections: dict[int, Detections | None] = field(default_factory=dict)
    tracks: dict[int, list[int]] = field(default_factory=dict)
    events: list[tuple[str, str, int, int]] = field(default_factory=list)


def run_composed(run_sections: dict[str, dict[str, Any]], context: Context, period_ns: int, drop: bool) -> Results:
    ros = RosPipeline(sections=run_sections, context=context)
    results = Results()
    first: list[int] = []
    try:
        assert ros.pipeline is not None
        graph = ros.pipeline.graph
        # The source's own tap runs before the frame goes on: ``first`` is set before any detect worker reads it.
        graph.tap("source", lambda p: first.append(p.meta.stamp_ns) if not first else None)
        if drop:
            graph.wrap("detect", lambda p: None if lost(p.meta.stamp_ns - first[0], period_ns) else p)
        graph.tap("detect", lambda p: results.detections.__setitem__(p.meta.stamp_ns - first[0], p.detections))
        graph.tap(
            "track",
            lambda p: results.tracks.__setitem__(p.meta.stamp_ns - first[0], track_ids(p)),
        )
        graph.tap(
            "events",
            lambda p: results.events.extend((e.kind, e.rule, e.track_id, e.stamp_ns - first[0]) for e in p.events),
        )
        assert ros.run() == 0, ros.health.report().message
    finally:
        ros.destroy()
    return results


class Relay:
    """Stands in for a lossy link: takes ``detections``, loses the chosen frames, passes the rest on
    ``detections_lossy``. Frames are told apart by stamp since the first one (ROS headers carry no index)."""

    def __init__(self, listener: Listener, period_ns: int, source: str, target: str) -> None:
        self.period_ns = period_ns
        self.first: int | None = None
        self.dropped: list[int] = []
        self.publisher = listener.node.create_publisher(Detection2DArray, target, RELIABLE)
        self.subscription = listener.node.create_subscription(Detection2DArray, source, self._on_msg, RELIABLE)

    def _on_msg(self, msg: Detection2DArray) -> None:
        stamp = ns(msg)
        if self.first is None:
            self.first = stamp  # reliable and in order: the first message is the first frame
        if lost(stamp - self.first, self.period_ns):
            self.dropped.append(stamp - self.first)
            return
        self.publisher.publish(msg)

    @property
    def matched(self) -> bool:
        return self.subscription.get_publisher_count() > 0 and self.publisher.get_subscription_count() > 0


def node_status(diagnostics: list[Any], node: str) -> dict[str, str]:
    """The latest /diagnostics values of the standalone node ``node`` (its fully qualified name)."""
    for msg in reversed(diagnostics):
        for status in msg.status:
            if status.name == f"edge_vision: {node}":
                return diagnostic_values(status)
    return {}


def test_standalone_processes_match_composed_with_and_without_lost_detections(
    ros_context: Context, video: Path, tmp_path: Path, listener: Listener
) -> None:
    period_ns = frame_ns(video)
    labels = LABELS.read_text().split("\n")
    # Composed: rate 0 (stamps are media time, so pacing changes nothing but the run time).
    composed = sections(every_nth=EVERY_NTH, max_frames=FRAMES)
    whole = run_composed(composed, ros_context, period_ns, drop=False)
    lossy = run_composed(composed, ros_context, period_ns, drop=True)
    assert len(whole.tracks) == FRAMES and len(lossy.tracks) == FRAMES - FRAMES // 10
    assert whole.events, "the sample's line and zone see people within 60 frames"
    assert lossy.events != whole.events and any(ids != whole.tracks[k] for k, ids in lossy.tracks.items())

    # Separate processes: camera, detector, tracker, events, visualizer; plus a second tracker and events node
    # (namespace lossy) fed through the relay, which loses the same frames.
    standalone = sections(every_nth=EVERY_NTH, max_frames=FRAMES, rate=2.0, wait_for_subscribers=2, qos_depth=20)
    for section in ("detector", "tracker", "events", "visualizer"):
        standalone[section]["qos_depth"] = 100  # no message of the run can fall out of a history
    params = write_params({k: v for k, v in standalone.items() if k != "pipeline"}, tmp_path / "p.yaml")
    relay = Relay(listener, period_ns, "detections", "/detections_lossy")
    detections = listener.listen("detections", Detection2DArray)
    tracks = listener.listen("tracks", Detection2DArray)
    events = listener.listen("events", EventMsg)
    lossy_tracks = listener.listen("/lossy/tracks", Detection2DArray)
    lossy_events = listener.listen("/lossy/events", EventMsg)
    annotated = listener.listen("image_annotated", Image)
    diagnostics = listener.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=50))
    downstream = start_nodes(params, ("detector", "tracker", "events", "visualizer"), log_dir=tmp_path)
    downstream += start_nodes(
        params,
        ("tracker", "events"),
        namespace="lossy",
        remap={"detections": "/detections_lossy", "label_info": "/label_info"},
        log_dir=tmp_path,
    )
    graph = listener.node
    camera: list[subprocess.Popen[bytes]] = []
    try:
        # Every stage up and linked before the first frame (the camera itself waits for its 2 subscribers).
        wait_for(
            lambda: (
                running(downstream, tmp_path)
                and graph.count_subscribers("/image_raw") >= 2
                and graph.count_subscribers("/detections") >= 3
                and graph.count_subscribers("/tracks") >= 3
                and graph.count_subscribers("/lossy/tracks") >= 2
                and graph.count_subscribers("/label_info") >= 5
                and relay.matched
                and listener.hears("detections", "tracks", "events", "/lossy/tracks", "/lossy/events")
                and listener.hears("image_annotated")
            ),
            60,
            lambda: {t: graph.count_subscribers(t) for t in ("/image_raw", "/detections", "/tracks", "/lossy/tracks")},
        )
        camera = start_nodes(params, ("camera",), log_dir=tmp_path)
        progress = lambda: (len(detections), len(tracks), len(lossy_tracks), len(events), len(lossy_events))  # noqa: E731
        wait_for(
            lambda: running(downstream, tmp_path) and len(tracks) == FRAMES and len(lossy_tracks) == len(lossy.tracks),
            120,
            progress,
        )
        assert camera[0].wait(30) == 0
        # The events nodes report on /diagnostics once they have taken every frame.
        wait_for(
            lambda: (
                node_status(diagnostics, "/events").get("frames_processed") == str(FRAMES)
                and node_status(diagnostics, "/lossy/events").get("frames_processed") == str(len(lossy.tracks))
            ),
            30,
            lambda: (node_status(diagnostics, "/events"), node_status(diagnostics, "/lossy/events")),
        )
        wait_for(
            lambda: (
                len(events) >= len(whole.events) and len(lossy_events) >= len(lossy.events) and len(annotated) >= FRAMES
            ),
            30,
            progress,
        )
    finally:
        codes = stop_nodes(camera + downstream)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in sorted(tmp_path.glob("*.log"))}
    assert codes == [0] * len(codes), (codes, logs)

    base = ns(detections[0])
    assert relay.first == base and len(relay.dropped) == FRAMES // 10
    assert len(detections) == FRAMES
    assert sorted(whole.detections) == [ns(m) - base for m in detections]
    for msg in detections:
        ours, theirs = whole.detections[ns(msg) - base], msg_to_detections(msg, labels)
        assert ours is not None
        assert theirs.class_ids.tolist() == ours.class_ids.tolist()
        np.testing.assert_allclose(theirs.xyxy, ours.xyxy, atol=1e-3)
        np.testing.assert_allclose(theirs.scores, ours.scores, atol=1e-6)
    for composed_run, track_msgs, event_msgs in ((whole, tracks, events), (lossy, lossy_tracks, lossy_events)):
        got_tracks = {ns(m) - base: [int(d.id) for d in m.detections] for m in track_msgs}
        assert got_tracks == composed_run.tracks
        got_events = [(e.kind, e.rule, e.track_id, ns(e) - base) for e in event_msgs]
        assert got_events == composed_run.events
    assert sorted(set(whole.tracks) - set(lossy.tracks)) == sorted(relay.dropped)
    assert len(annotated) == FRAMES and annotated[0].width == 768 and annotated[0].height == 576


# -- a standalone node: malformed input ---------------------------------------------------------------------


def test_malformed_images_are_rejected_and_the_node_keeps_going(video: Path, listener: Listener) -> None:
    context = Context()
    rclpy.init(args=[], context=context)
    ros = RosPipeline(("detect",), sections=sections(), context=context)
    thread, codes = run_in_background(ros)
    try:
        detections = listener.listen("detections", Detection2DArray)
        publisher = listener.node.create_publisher(Image, "image_raw", RELIABLE)
        image_inputs = list(ros.nodes["detector"].subscriptions)
        wait_for(
            lambda: (
                publisher.get_subscription_count() > 0
                and all(s.get_publisher_count() > 0 for s in image_inputs)
                and outputs_matched(ros, ("detect",))
                and listener.hears("detections")
            )
        )
        with FileSource(str(video), max_frames=1) as source:
            frame = next(source.frames())
        good, wrong_encoding, truncated = (frame_to_image(frame) for _ in range(3))
        wrong_encoding.encoding = "mono16"  # a real encoding, but not 8 bits: no detector takes it
        truncated.data = truncated.data[:1000]
        wrong_encoding.header.stamp.sec += 1  # each told apart by its stamp
        truncated.header.stamp.sec += 2
        for msg in (wrong_encoding, truncated, good):
            publisher.publish(msg)
        wait_for(lambda: len(detections) == 1)
        # The two bad ones came first on the same ordered link: counted once the good one is through.
        detect = next(s for s in ros.health.report().stages if s.name == "detect")
        assert thread.is_alive(), "the node must keep running"
    finally:
        rclpy.shutdown(context=context)  # how a standalone node is stopped (SIGINT does the same)
        thread.join(30)
        ros.destroy()
    assert codes == [0]
    assert detect.dropped == 2 and detect.processed == 1 and detect.errors == 0
    assert len(detections) == 1
    assert detections[0].header.stamp == good.header.stamp and len(detections[0].detections) > 3


# -- the container executable -------------------------------------------------------------------------------


def test_container_executable_reads_a_ros_parameter_file(tmp_path: Path) -> None:
    run_sections = sections(max_frames=30)
    params = write_params(run_sections, tmp_path / "params.yaml")
    command = [sys.executable, "-m", "edge_vision.ros.container", "--ros-args", "--params-file", str(params)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "30 frames processed" in output and "detect: 30 x" in output, output
    assert "Traceback" not in output

    run_sections["detector"]["confidence"] = 2.0  # out of the declared range
    command[-1] = str(write_params(run_sections, tmp_path / "bad.yaml"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("edge_vision: error: detector.confidence"), result.stderr
    assert "2.0" in errors[0]
    assert "Traceback" not in result.stderr


# -- two cameras in one process -----------------------------------------------------------------------------


@dataclass
class CameraResults:
    tracks: list[tuple[int, list[int]]] = field(default_factory=list)  # (stamp since the first frame, ids)
    events: list[tuple[str, str, int, int, int]] = field(default_factory=list)


def record_camera(ros: RosPipeline, camera: str) -> CameraResults:
    assert ros.pipeline is not None
    graph, results = ros.pipeline.graph, CameraResults()
    first: list[int] = []
    prefix = f"{camera}/" if camera else ""
    graph.tap(f"{prefix}source", lambda p: first.append(p.meta.stamp_ns) if not first else None)
    graph.tap(
        f"{prefix}track",
        lambda p: results.tracks.append((p.meta.stamp_ns - first[0], track_ids(p))),
    )
    graph.tap(
        f"{prefix}events",
        lambda p: results.events.extend(
            (e.kind, e.rule, e.track_id, e.stamp_ns - first[0], e.sequence) for e in p.events
        ),
    )
    return results


def test_two_cameras_in_one_process_match_single_camera_runs(ros_context: Context, video: Path, tmp_path: Path) -> None:
    clips = {"front": str(video), "back": str(make_clip(tmp_path / "back.mp4", video, first=200, count=60))}
    single: dict[str, CameraResults] = {}
    for camera, uri in clips.items():
        ros = RosPipeline(sections=sections(uri=uri, max_frames=60), context=ros_context)
        try:
            single[camera] = record_camera(ros, "")
            assert ros.run() == 0
        finally:
            ros.destroy()
    both = sections()
    both["pipeline"]["cameras"] = ["front", "back"]
    both["camera"]["cameras"] = {name: {"uri": uri, "max_frames": 60} for name, uri in clips.items()}
    ros = RosPipeline(sections=both, context=ros_context)
    try:
        assert ros.camera_names == ["front", "back"]
        assert {"front/track", "back/track", "front/events", "back/events"} <= set(ros.pipeline.graph.stages)  # type: ignore[union-attr]
        together = {camera: record_camera(ros, camera) for camera in clips}
        assert ros.run() == 0
        report = ros.health.report()
    finally:
        ros.destroy()
    assert report.frames_processed == 120
    for camera in clips:
        assert len(single[camera].tracks) == 60
        assert together[camera].tracks == single[camera].tracks, camera
        assert together[camera].events == single[camera].events, camera
    assert any(ids for _, ids in single["back"].tracks), "the second clip has people to track"
    assert single["front"].events, "the sample's zone sees people enter within 60 frames"


# -- health: a failing stage, dropped frames ----------------------------------------------------------------


class _Boom:
    """A tracker plugin registered out of tree, whose every update fails."""

    PARAMS = ()
    first_failure: float | None = None

    def update(self, detections: Detections, meta: FrameMeta) -> Detections:
        if _Boom.first_failure is None:
            _Boom.first_failure = time.monotonic()
        raise RuntimeError("boom")

    def reset(self) -> None:
        pass


def test_failing_stage_reports_error_on_diagnostics_and_exits_1(ros_context: Context, listener: Listener) -> None:
    plugins.register("trackers", "test_boom", _Boom)
    _Boom.first_failure = None
    run_sections = sections(rate=1.0, loop=True)  # live-ish: real time, never ends on its own
    run_sections["tracker"] = config.resolve("tracker", {"tracker": "test_boom"})
    diagnostics = listener.listen("/diagnostics", DiagnosticArray)
    ros = RosPipeline(sections=run_sections, context=ros_context)
    try:
        wait_for(lambda: listener.hears("/diagnostics"))
        code = ros.run()
        failure = _Boom.first_failure
        assert failure is not None
        error_at = lambda: next(  # noqa: E731
            (
                t
                for t, m in zip(listener.arrivals["/diagnostics"], diagnostics, strict=False)
                if m.status[0].level == ERROR
            ),
            None,
        )
        wait_for(lambda: error_at() is not None, 10)
    finally:
        ros.destroy()
    assert code == 1
    arrived = error_at()
    assert arrived is not None and arrived - failure < 2.0, f"ERROR {arrived - failure:.2f} s after the failure"
    status = next(m.status[0] for m in diagnostics if m.status[0].level == ERROR)
    assert "track" in status.message and "boom" in status.message, status.message
    assert int(diagnostic_values(status)["errors"]) >= run_sections["pipeline"]["error_budget"]


class _SlowTrack(ByteTrack):
    PARAMS = ()

    def update(self, detections: Detections, meta: FrameMeta | Any) -> Detections:
        time.sleep(0.2)
        return super().update(detections, meta)


def test_dropped_frames_show_on_stats_and_diagnostics_while_running(ros_context: Context, listener: Listener) -> None:
    plugins.register("trackers", "test_slow", _SlowTrack)
    run_sections = sections(rate=0.0, loop=True)  # as fast as it decodes, until stopped
    run_sections["tracker"] = config.resolve("tracker", {"tracker": "test_slow"})
    run_sections["pipeline"].update(policy="drop_oldest", queue_size=1, stats_period=0.25)
    ros = RosPipeline(sections=run_sections, context=ros_context)
    running: list[str] = []  # the source's state when a message showing drops arrived

    def source_state() -> str:
        return ros.health.report().sources[0].state

    def on_stats(msg: PipelineStats) -> None:
        if msg.frames_dropped > 0:
            running.append(f"stats {source_state()}")

    def on_diagnostics(msg: DiagnosticArray) -> None:
        status = msg.status[0]
        if status.level == WARN and int(diagnostic_values(status)["frames_dropped"]) > 0:
            running.append(f"diagnostics {source_state()}")

    listener.listen("stats", PipelineStats, on_msg=on_stats)
    listener.listen("/diagnostics", DiagnosticArray, on_msg=on_diagnostics)
    thread: threading.Thread | None = None
    try:
        wait_for(lambda: listener.hears("stats", "/diagnostics"))
        thread, codes = run_in_background(ros)
        wait_for(
            lambda: any(r.startswith("stats") for r in running) and any(r.startswith("diagnostics") for r in running),
            30,
            lambda: running,
        )
        assert ros.pipeline is not None
        ros.pipeline.stop()
        thread.join(30)
    finally:
        if thread is not None and thread.is_alive():
            ros.pipeline.stop()  # type: ignore[union-attr]
            thread.join(30)
        ros.destroy()
    assert codes == [0]
    first_stats = next(r for r in running if r.startswith("stats"))
    first_diagnostics = next(r for r in running if r.startswith("diagnostics"))
    assert first_stats == "stats streaming" and first_diagnostics == "diagnostics streaming", running
    detect = next(s for s in ros.health.report().stages if s.name == "detect")
    assert detect.dropped > 0
