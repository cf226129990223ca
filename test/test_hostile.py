"""Hostile and bad input, secrets, DDS binding, telemetry and silent wrong data (issue 9, part C).

- Every ROS input is validated: hostile Detection2DArray / Image / CompressedImage / LabelInfo messages sent by a
  real publisher to real standalone tracker, events and visualizer processes are dropped and counted (on
  /diagnostics), the nodes stay up and keep processing the good messages that follow; a burst is counted.
- Secrets: an RTSP password and token never appear in `ros2 param get`, /<node>/get_parameters, logs or
  /diagnostics; a password taken from the environment opens a real (basic-auth)
  stream and shows nowhere either.
- DDS: with config/fastdds_shm.xml every UDP socket of a node is bound to 127.0.0.1 (without it: 0.0.0.0).
- Telemetry of dependencies is off once a detector is built.
- Silent wrong data gets a clear message: VFR stamps from pts, truncated MKV/AVI/MP4, NaN model outputs, a
  labels file of the wrong length, duplicate YAML keys, a dynamic-shape model without an input size.
"""

from __future__ import annotations

import array
import base64
import json
import logging
import os
import re
import secrets as pysecrets
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters
from rclpy.context import Context
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose, VisionClass

from conftest import CONFIG, LABELS, MODEL, REPO, cli, ros2_at_node
from edge_vision.core import config, secrets, telemetry
from edge_vision.core.detection.detector import Detector
from edge_vision.core.errors import ConfigError, ModelError, SourceError
from edge_vision.core.sources.file import FileSource
from edge_vision.ros import bridge
from edge_vision.ros.container import RosPipeline
from edge_vision.ros.conversions import (
    MAX_PIXELS,
    MessageError,
    compressed_to_frame,
    image_to_frame,
    labels_from_msg,
    msg_to_detections,
    report_to_status,
)
from edge_vision.ros.processes import start_nodes, stop_nodes
from ros_participant import Participant, diagnostic_values

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
COCO = [line.strip() for line in LABELS.read_text().splitlines() if line.strip()]
PERIOD_NS = 100_000_000
PROFILE = REPO / "config" / "fastdds_shm.xml"


# -- helpers ------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting; state: {state()}")
        time.sleep(0.02)


def stamp(msg: Any, k: int) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(1_000_000_000_000 + k * PERIOD_NS, 1_000_000_000)
    msg.header.frame_id = "cam"
    return msg


def detection(
    cx: float = 100.0,
    cy: float = 100.0,
    w: float = 40.0,
    h: float = 80.0,
    score: float = 0.9,
    class_id: str = "person",
    track: str = "",
) -> Detection2D:
    det = Detection2D()
    det.bbox.center.position.x, det.bbox.center.position.y = cx, cy
    det.bbox.size_x, det.bbox.size_y = w, h
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = class_id, score
    det.results.append(hypothesis)
    det.id = track
    return det


def array_of(*dets: Detection2D) -> Detection2DArray:
    msg = Detection2DArray()
    msg.detections = list(dets)
    return msg


def good_detections(k: int) -> Detection2DArray:
    return stamp(array_of(detection(100 + k, 100), detection(300, 200, class_id="car", score=0.8)), k)


def no_results() -> Detection2DArray:
    det = detection()
    det.results = []
    return array_of(det)


# Each hostile Detection2DArray, and what the refusal must name.
HOSTILE_DETECTIONS: list[tuple[str, Callable[[], Detection2DArray], str]] = [
    ("huge track id", lambda: array_of(detection(track="9" * 25)), "not a non-negative integer track id"),
    ("track id past int64", lambda: array_of(detection(track=str(2**63))), "does not fit a 64-bit track id"),
    ("negative track id", lambda: array_of(detection(track="-5")), "not a non-negative integer track id"),
    ("non-numeric track id", lambda: array_of(detection(track="abc")), "not a non-negative integer track id"),
    ("4300-digit track id", lambda: array_of(detection(track="7" * 5000)), "5000 characters"),
    ("huge class index", lambda: array_of(detection(class_id="99999999999")), "outside the 80 labels"),
    ("negative class index", lambda: array_of(detection(class_id="-1")), "outside the 80 labels"),
    ("unknown class name", lambda: array_of(detection(class_id="unicorn")), "'unicorn' is not one of the 80"),
    ("NaN centre", lambda: array_of(detection(cx=float("nan"))), "is not a finite box"),
    ("infinite size", lambda: array_of(detection(w=float("inf"))), "is not a finite box"),
    ("negative size", lambda: array_of(detection(h=-10.0)), "is not a finite box"),
    ("float32 overflow", lambda: array_of(detection(cx=1e300)), "is not a finite box"),
    ("NaN score", lambda: array_of(detection(score=float("nan"))), "score nan is not within"),
    ("score 7", lambda: array_of(detection(score=7.0)), "score 7.0 is not within"),
    ("no results", no_results, "has no results"),
    ("absurd count", lambda: array_of(*[detection()] * 10_001), "10001 detections; at most 10000"),
]


def image_msg(pixels: np.ndarray, k: int) -> Image:
    height, width = pixels.shape[:2]
    msg = Image(height=height, width=width, encoding="bgr8", step=width * 3)
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(pixels).tobytes())
    msg.data = data
    return stamp(msg, k)


def raw_image(width: int, height: int, encoding: str, step: int, size: int) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = array.array("B", bytes(size))
    return msg


HOSTILE_IMAGES: list[tuple[str, Callable[[], Image], str]] = [
    ("data shorter than step*height", lambda: raw_image(64, 48, "bgr8", 192, 1000), "needs 9216"),
    ("step below width*3", lambda: raw_image(64, 48, "bgr8", 100, 9216), "step 100 is smaller"),
    ("absurd size, little data", lambda: raw_image(100_000, 100_000, "bgr8", 300_000, 64), "exceeds the limit"),
    ("zero size", lambda: raw_image(0, 48, "bgr8", 0, 0), "zero size"),
    ("float image", lambda: raw_image(4, 4, "32FC1", 16, 64), "more than 8 bits"),
    ("unknown encoding", lambda: raw_image(4, 4, "bayer_rggb8", 4, 16), "'bayer_rggb8' is not supported"),
]


def png_header(width: int, height: int) -> bytes:
    """A real PNG start: signature, IHDR (8-bit RGB, valid CRC), then a little deflated zero data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(bytes(width * 3 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(idat)) + b"IDAT" + idat


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline frame header (SOF0) declaring ``width`` x ``height``."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + bytes(2000) + b"\xff\xd9"


def compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


HOSTILE_COMPRESSED: list[tuple[str, Callable[[], CompressedImage], str]] = [
    ("PNG bomb", lambda: compressed(png_header(20_000, 20_000), "png"), "20000x20000 pixels exceeds the limit"),
    ("JPEG bomb", lambda: compressed(jpeg_header(30_000, 20_000)), "30000x20000 pixels exceeds the limit"),
    ("not an image", lambda: compressed(b"GIF89a" + bytes(100)), "not JPEG or PNG"),
    ("TIFF", lambda: compressed(b"II*\x00" + bytes(100), "tiff"), "not JPEG or PNG"),
    ("empty", lambda: compressed(b""), "has no data"),
    ("JPEG without a frame header", lambda: compressed(b"\xff\xd8\xff\xd9"), "no JPEG frame header"),
    ("depth image", lambda: compressed(png_header(4, 4), "16UC1; compressedDepth"), "depth image"),
]


def label_info_msg(names: list[str], ids: list[int] | None = None) -> LabelInfo:
    msg = LabelInfo()
    msg.class_map = [
        VisionClass(class_id=i, class_name=n) for i, n in zip(ids or range(len(names)), names, strict=True)
    ]
    return msg


def node_statuses(diagnostics: list[Any], node: str) -> list[dict[str, str]]:
    """Every /diagnostics value set of the node ``node`` (fully qualified), oldest first."""
    return [diagnostic_values(s) for msg in list(diagnostics) for s in msg.status if s.name == f"edge_vision: {node}"]


def latest(diagnostics: list[Any], node: str) -> dict[str, str]:
    found = node_statuses(diagnostics, node)
    return found[-1] if found else {}


class Peer(Participant):
    """A ROS participant of the test (its own context), spun on a background thread."""

    def __init__(self, name: str = "test_hostile_peer") -> None:
        super().__init__(name)
        self.spin()

    def listen(self, topic: str, msg_type: Any, qos: QoSProfile = RELIABLE) -> list[Any]:
        store: list[Any] = []
        self.node.create_subscription(msg_type, topic, store.append, qos)
        return store


@pytest.fixture()
def peer() -> Iterator[Peer]:
    made = Peer()
    yield made
    made.close()


def quiet_sections() -> dict[str, dict[str, Any]]:
    """The shipped config without output files (no video, no event actions)."""
    sections = config.load_file(CONFIG)
    sections["visualizer"]["video_path"] = ""
    sections["events"]["actions"] = {}
    return sections


def final_diagnostics(sections: dict[str, dict[str, Any]], context: Context) -> dict[str, str]:
    """Run ``sections`` in this process through the ROS executable's pipeline to the end (exit 0) and return its
    final health as /diagnostics shows it."""
    ros = RosPipeline(sections=sections, context=context)
    try:
        assert ros.run() == 0
        return diagnostic_values(report_to_status(ros.health.report(), "edge_vision", "cam"))
    finally:
        ros.destroy()


def params_file(path: Path, **overrides: dict[str, Any]) -> Path:
    """The shipped config (no output files) with per-section overrides, as a ROS parameter file."""
    sections = quiet_sections()
    for section, changes in overrides.items():
        sections[section] = config.resolve(section, {**sections[section], **changes})
    return config.write_ros_parameters(sections, path)


def alive(processes: list[subprocess.Popen[bytes]], log_dir: Path) -> bool:
    ended = [p.args for p in processes if p.poll() is not None]
    if ended:
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in sorted(log_dir.glob("*.log"))}
        raise AssertionError(f"node process(es) ended: {ended}; logs: {logs}")
    return True


def frame_pixels(count: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    out = []
    with av.open(str(REPO / "data" / "vtest.avi")) as container:
        for frame in container.decode(video=0):
            out.append(cv2.resize(frame.to_ndarray(format="bgr24"), size))
            if len(out) == count:
                break
    return out


# -- secrets ------------------------------------------------------------------------------------------------


def test_redact_masks_passwords_tokens_and_expanded_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert secrets.redact("rtsp://admin:p%40ss@cam.local:554/s?token=abc&ch=1") == (
        "rtsp://admin:***@cam.local:554/s?token=***&ch=1"
    )
    assert secrets.redact("rtsp://u:p@ss@h/x") == "rtsp://u:***@h/x"  # an unencoded @ in the password
    assert secrets.redact("http://cam/x.mjpg?ch=2") == "http://cam/x.mjpg?ch=2"  # nothing secret: unchanged
    message = "Server returned 401 Unauthorized: 'http://viewer:hunter22@10.0.0.5/cam.mjpg?api_key=K3y&q=1'"
    assert (
        secrets.redact(message)
        == "Server returned 401 Unauthorized: 'http://viewer:***@10.0.0.5/cam.mjpg?api_key=***&q=1'"
    )
    assert secrets.redact_value("camera.front.uri", "rtsp://a:b@h/") == "rtsp://a:***@h/"
    assert secrets.redact_value("events.actions.hook.token", "xoxb-123") == "***"  # a parameter named like a secret
    assert secrets.redact_value("events.actions.hook.token", "${HOOK_TOKEN}") == "${HOOK_TOKEN}"  # a reference
    # A value expanded from the environment is masked wherever it shows up, even outside a URL.
    monkeypatch.setenv("EV_TEST_SECRET", "Tr0ub4dor&3")
    uri = secrets.expand("rtsp://cam:${EV_TEST_SECRET}@h/s", "camera.uri")
    assert uri == "rtsp://cam:Tr0ub4dor&3@h/s"
    assert secrets.redact("auth failed for password Tr0ub4dor&3") == "auth failed for password ***"


def test_environment_references_are_expanded_at_open_and_named_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EV_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"camera\.uri refers to environment variable\(s\) EV_TEST_MISSING"):
        FileSource("rtsp://u:${EV_TEST_MISSING}@127.0.0.1:9/s")
    from edge_vision.core import plugins

    with pytest.raises(ConfigError, match="EV_TEST_MISSING, which are not set"):
        plugins.build("sources", "stream", {"uri": "rtsp://u:${EV_TEST_MISSING}@127.0.0.1:9/s"}, where="camera")
    # A path from the environment opens the real file, while the configured value keeps the reference.
    clip = tmp_path / "clip.avi"
    shutil.copy(REPO / "data" / "vtest.avi", clip)
    monkeypatch.setenv("EV_TEST_DIR", str(tmp_path))
    with FileSource("${EV_TEST_DIR}/clip.avi", max_frames=2) as source:
        assert len(list(source.frames())) == 2 and source.uri == "${EV_TEST_DIR}/clip.avi"


# -- validation of every ROS input (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(("case", "make", "reason"), HOSTILE_DETECTIONS, ids=[c[0] for c in HOSTILE_DETECTIONS])
def test_hostile_detection_arrays_are_refused_naming_the_field(case: str, make: Callable[[], Any], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        msg_to_detections(make(), COCO)


def test_valid_detection_arrays_still_convert() -> None:
    msg = array_of(detection(class_id="3", track="42"), detection(class_id="car", track=""))
    found = msg_to_detections(msg, COCO)
    assert found.class_ids.tolist() == [3, 2] and found.track_ids.tolist() == [42, -1]
    np.testing.assert_allclose(found.xyxy[0], [80, 60, 120, 140])


@pytest.mark.parametrize(("case", "make", "reason"), HOSTILE_IMAGES, ids=[c[0] for c in HOSTILE_IMAGES])
def test_hostile_raw_images_are_refused(case: str, make: Callable[[], Image], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        image_to_frame(make())


@pytest.mark.parametrize(("case", "make", "reason"), HOSTILE_COMPRESSED, ids=[c[0] for c in HOSTILE_COMPRESSED])
def test_hostile_compressed_images_are_refused_before_decoding(
    case: str, make: Callable[[], CompressedImage], reason: str
) -> None:
    with pytest.raises(MessageError, match=reason):
        compressed_to_frame(make())


def test_decompression_bombs_are_ours_to_refuse() -> None:
    """Control: OpenCV's own ceiling (2^30 pixels) would let the 20000 x 20000 PNG through and allocate 1.2 GB
    for it; the header check refuses it. A real JPEG and PNG of normal size still decode."""
    assert MAX_PIXELS < 20_000 * 20_000 < 2**30
    picture = frame_pixels(1)[0]
    for extension, fmt in ((".jpg", "jpeg"), (".png", "png")):
        frame = compressed_to_frame(compressed(cv2.imencode(extension, picture)[1].tobytes(), fmt))
        assert frame.image.shape == picture.shape


def test_label_info_is_validated() -> None:
    assert labels_from_msg(label_info_msg(["person", "car"])) == ["person", "car"]
    assert labels_from_msg(label_info_msg(["a", "c"], [0, 2])) == ["a", "1", "c"]
    with pytest.raises(MessageError, match="lists class_id 1 twice"):
        labels_from_msg(label_info_msg(["a", "b", "c"], [0, 1, 1]))
    with pytest.raises(MessageError, match="class_id 65535 is beyond"):
        labels_from_msg(label_info_msg(["a"], [65535]))
    with pytest.raises(MessageError, match="no usable name"):
        labels_from_msg(label_info_msg(["a", " "]))


def test_gap_counter_counts_every_lost_frame_and_survives_hostile_stamps() -> None:
    ms = 1_000_000
    gaps = bridge.GapCounter()
    # A burst: 63 lost before the period is known (the first gap), then single frames: all counted.
    assert [gaps(t * 100 * ms) for t in (0, 64, 65, 67)] == [0, 0, 63, 1]
    gaps = bridge.GapCounter()
    assert [gaps(t * 100 * ms) for t in (1, 2, 4)] == [0, 0, 1]  # one frame lost between 2 and 4
    assert gaps(400 * ms + 1) == 0  # a stamp 1 ns later does not become the period...
    assert gaps(500 * ms) == 0  # ...so the next regular frame counts no loss (it counted 99999999 before)
    assert gaps(10**15) == 0  # a jump of 11 days is a discontinuity, not ten million lost frames
    assert gaps(10**15 + 300 * ms) == 2
    assert gaps(10**15 + 100_300 * ms) == 999  # a long burst still counts
    assert gaps(10**15 + 100_310 * ms, trusted=False) == 0  # a refused message: its stamp sets no period
    assert gaps(10**15 + 100_400 * ms) == 0
    # What a tracker received of a 500-message burst (measured): received + counted = sent.
    received = [0, 5, 51, 56, 64, 78, 83, 84, 85, 133, 136, 137, 139, 145, 148, 153, 154, 161, 173, 201, 209, 227]
    received += [242, 269, 316, 322, 340, 365, 366, 387, 495, 496, 497, 498, 499]
    gaps = bridge.GapCounter()
    assert len(received) + sum(gaps(k * 100 * ms) for k in received) == 500


# -- real nodes under attack --------------------------------------------------------------------------------


def test_hostile_messages_leave_tracker_events_and_visualizer_running(peer: Peer, tmp_path: Path) -> None:
    """A publisher sends good and hostile messages to standalone tracker, events and visualizer processes (raw
    and compressed images): each hostile one is dropped and counted once on /diagnostics with its reason, the
    processes stay up, and every good message, before and after the bad ones, is processed."""
    reliable_inputs = {"input_reliability": "reliable", "input_depth": 100}
    raw = params_file(
        tmp_path / "raw.yaml", tracker=reliable_inputs, events=reliable_inputs, visualizer=reliable_inputs
    )
    packed = params_file(tmp_path / "compressed.yaml", visualizer={**reliable_inputs, "image_transport": "compressed"})
    diagnostics = peer.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=500))
    node = peer.node
    label_publishers = {
        ns: node.create_publisher(LabelInfo, f"/{ns}/label_info", LATCHED) for ns in ("t", "e", "v", "vc")
    }
    detections_in = node.create_publisher(Detection2DArray, "/t/detections", RELIABLE)
    tracks_in = {ns: node.create_publisher(Detection2DArray, f"/{ns}/tracks", RELIABLE) for ns in ("e", "v", "vc")}
    images_in = node.create_publisher(Image, "/v/image_raw", RELIABLE)
    jpegs_in = node.create_publisher(CompressedImage, "/vc/image_raw/compressed", RELIABLE)
    tracks_out = peer.listen("/t/tracks", Detection2DArray)
    annotated = peer.listen("/v/image_annotated", Image)
    annotated_jpeg = peer.listen("/vc/image_annotated", Image)
    processes = start_nodes(raw, ("tracker",), namespace="t", log_dir=tmp_path)
    processes += start_nodes(raw, ("events",), namespace="e", log_dir=tmp_path)
    processes += start_nodes(raw, ("visualizer",), namespace="v", log_dir=tmp_path)
    processes += start_nodes(packed, ("visualizer",), namespace="vc", log_dir=tmp_path)
    inputs = [*label_publishers.values(), detections_in, *tracks_in.values(), images_in, jpegs_in]
    try:
        wait_for(
            lambda: (
                alive(processes, tmp_path)
                and all(p.get_subscription_count() > 0 for p in inputs)
                and all(
                    node.count_publishers(t) > 0 for t in ("/t/tracks", "/v/image_annotated", "/vc/image_annotated")
                )
            ),
            state=lambda: [p.topic_name for p in inputs if not p.get_subscription_count()],
        )
        time.sleep(0.5)  # the reader side matches a moment after the writer side
        # LabelInfo: a hostile one first (refused, counted), then the real one. Depth 1: the good one would replace
        # the bad one in a reader's history before its node took it (acked is not taken: CI saw that happen under
        # load), so the good one goes out once every node has said it refused the bad one.
        for publisher in label_publishers.values():
            publisher.publish(label_info_msg(["person", "person"], [0, 0]))

        def labels_not_yet_refused() -> list[str]:
            return [
                name
                for name in ("/t/tracker", "/e/events", "/v/visualizer", "/vc/visualizer")
                if "label_info" not in " ".join(v.get("bad_input", "") for v in node_statuses(diagnostics, name))
            ]

        wait_for(
            lambda: not labels_not_yet_refused(),
            60,
            state=lambda: f"no bad_input on label_info yet: {labels_not_yet_refused()}",
        )
        for publisher in label_publishers.values():
            publisher.publish(label_info_msg(COCO))
        pictures = frame_pixels(4)
        k = 0  # stamp index of the tracker's and events' inputs: good and hostile messages each take one
        good: list[int] = []  # the good ones' stamps; the visualizers get good messages at 0, 1, 2... only
        bad = 0

        def send_good() -> None:
            nonlocal k
            j = len(good)
            detections_in.publish(good_detections(k))
            tracks_in["e"].publish(stamp(array_of(detection(track=str(k + 1))), k))
            for ns in ("v", "vc"):
                tracks_in[ns].publish(stamp(array_of(detection(track=str(j + 1))), j))
            picture = pictures[j % len(pictures)]
            images_in.publish(image_msg(picture, j))
            jpegs_in.publish(stamp(compressed(cv2.imencode(".jpg", picture)[1].tobytes()), j))
            good.append(k)
            k += 1
            time.sleep(0.01)

        stages = {
            "/t/tracker": "track",
            "/e/events": "events",
            "/v/visualizer": "annotate",
            "/vc/visualizer": "annotate",
        }

        def counted() -> dict[str, tuple[int, int]]:
            """Per node: (dropped at its stage, frames processed), from its latest /diagnostics."""
            now = {name: latest(diagnostics, name) for name in stages}
            return {
                name: (int(now[name].get(f"{stage}_dropped", 0)), int(now[name].get("frames_processed", 0)))
                for name, stage in stages.items()
            }

        # Warm up until every node has built its pipeline (from label_info) and processed a frame; what came
        # before that (images the visualizers could not use yet) is the baseline the checks start from.
        deadline = time.monotonic() + 60
        while not all(processed for _dropped, processed in counted().values()):
            assert time.monotonic() < deadline and alive(processes, tmp_path), counted()
            send_good()
            time.sleep(0.5)
        baseline = counted()
        while True:  # settled: two diagnostics periods without a change
            time.sleep(2.5)
            if counted() == baseline:
                break
            baseline = counted()
        warm = len(good)
        outputs_before = (len(tracks_out), len(annotated), len(annotated_jpeg))
        for _ in range(3):
            send_good()
        for index in range(max(len(HOSTILE_DETECTIONS), len(HOSTILE_IMAGES), len(HOSTILE_COMPRESSED))):
            # To the tracker and events, a hostile array takes a stamp of its own in the sequence (it arrived: it
            # counts as one bad message, not also as a lost one). The visualizers pair images with tracks by
            # stamp, so theirs reuse the previous good stamp.
            if index < len(HOSTILE_DETECTIONS):
                hostile = HOSTILE_DETECTIONS[index][1]
                detections_in.publish(stamp(hostile(), k))
                tracks_in["e"].publish(stamp(hostile(), k))
                for ns in ("v", "vc"):
                    tracks_in[ns].publish(stamp(hostile(), len(good) - 1))
                bad += 1
                k += 1
            if index < len(HOSTILE_IMAGES):
                images_in.publish(stamp(HOSTILE_IMAGES[index][1](), len(good) - 1))
            if index < len(HOSTILE_COMPRESSED):
                jpegs_in.publish(stamp(HOSTILE_COMPRESSED[index][1](), len(good) - 1))
            send_good()
        for _ in range(3):
            send_good()

        sent = len(good) - warm
        refused = {
            "/t/tracker": bad,
            "/e/events": bad,
            "/v/visualizer": bad + len(HOSTILE_IMAGES),
            "/vc/visualizer": bad + len(HOSTILE_COMPRESSED),
        }
        expected = {name: (baseline[name][0] + refused[name], baseline[name][1] + sent) for name in stages}

        def done() -> bool:
            alive(processes, tmp_path)
            return counted() == expected

        wait_for(done, timeout=60, state=lambda: (counted(), expected))
        wait_for(
            lambda: [len(tracks_out), len(annotated), len(annotated_jpeg)] == [n + sent for n in outputs_before],
            state=lambda: (len(tracks_out), len(annotated), len(annotated_jpeg), outputs_before, sent),
        )
        assert alive(processes, tmp_path)
    finally:
        codes = stop_nodes(processes)
    assert codes == [0, 0, 0, 0]
    # The good messages before, between and after the hostile ones came through, in order, with their stamps.
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec - 10**12 for m in tracks_out[-sent:]] == [
        g * PERIOD_NS for g in good[warm:]
    ]
    # While it happened, /diagnostics named the input, the count and the last reason (WARN).
    for name in expected:
        reports = [v.get("bad_input", "") for v in node_statuses(diagnostics, name)]
        assert any(r.startswith("WARN: dropped bad messages") for r in reports), (name, reports[-3:])
    tracker_reports = " ".join(v.get("bad_input", "") for v in node_statuses(diagnostics, "/t/tracker"))
    assert "/t/detections" in tracker_reports and "label_info" in tracker_reports
    compressed_reports = " ".join(v.get("bad_input", "") for v in node_statuses(diagnostics, "/vc/visualizer"))
    assert "image_raw/compressed" in compressed_reports
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    for name, text in logs.items():
        assert "Traceback" not in text and "dropped" in text, (name, text[-2000:])


def test_a_burst_is_counted_as_drops_on_diagnostics(peer: Peer, tmp_path: Path) -> None:
    """500 detection arrays as fast as one process can publish them: the DDS histories (depth 5) overwrite
    most of them, DDS reports none of that, and every one that never arrived is counted from the stamp gaps:
    processed + dropped = sent, and the drops show on /diagnostics."""
    params = params_file(tmp_path / "burst.yaml")
    diagnostics = peer.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=500))
    node = peer.node
    labels = node.create_publisher(LabelInfo, "/b/label_info", LATCHED)
    detections_in = node.create_publisher(Detection2DArray, "/b/detections", QoSProfile(depth=5))
    out = peer.listen("/b/tracks", Detection2DArray)
    processes = start_nodes(params, ("tracker",), namespace="b", log_dir=tmp_path)
    sent = 500
    try:
        wait_for(
            lambda: (
                alive(processes, tmp_path)
                and detections_in.get_subscription_count() > 0
                and labels.get_subscription_count() > 0
                and node.count_publishers("/b/tracks") > 0
            )
        )
        time.sleep(0.5)
        labels.publish(label_info_msg(COCO))
        detections_in.publish(good_detections(0))
        wait_for(lambda: len(out) == 1)  # the tracker is running: the burst meets a built pipeline
        for k in range(1, sent):
            detections_in.publish(good_detections(k))

        def figures() -> tuple[int, int]:
            status = latest(diagnostics, "/b/tracker")
            return int(status.get("frames_processed", 0)), int(status.get("track_dropped", 0))

        wait_for(lambda: bool(out) and out[-1].header.stamp == good_detections(sent - 1).header.stamp, state=figures)
        wait_for(
            lambda: sum(figures()) == sent,
            state=lambda: (
                figures(),
                [(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec) // PERIOD_NS for m in out],
            ),
        )
        levels = [s.level for msg in diagnostics for s in msg.status if s.name == "edge_vision: /b/tracker"]
    finally:
        codes = stop_nodes(processes)
    processed, dropped = figures()
    print(f"burst of {sent}: {processed} processed, {dropped} counted as dropped")
    assert codes == [0]
    assert dropped > 100 and processed == len(out)  # most of the burst was lost, and all of that is counted
    assert b"\x01" in levels  # WARN while dropping


# -- secrets through the real node ---------------------------------------------------------------------------


def get_parameters(node: Any, target: str, names: list[str]) -> list[Any]:
    client = node.create_client(GetParameters, f"{target}/get_parameters")
    try:
        wait_for(lambda: client.service_is_ready())
        future = client.call_async(GetParameters.Request(names=names))
        wait_for(future.done)
        return list(future.result().values)
    finally:
        node.destroy_client(client)


def test_rtsp_password_is_redacted_in_parameter_readback_logs_and_diagnostics(peer: Peer, tmp_path: Path) -> None:
    password, token = "S3cr3t-pass", "abcdef123456"
    uri = f"rtsp://admin:{password}@127.0.0.1:9/stream1?token={token}&ch=1"
    shown = "rtsp://admin:***@127.0.0.1:9/stream1?token=***&ch=1"
    params = tmp_path / "camera.yaml"
    params.write_text(
        yaml.safe_dump({"/**/camera": {"ros__parameters": {"source": "stream", "uri": uri, "open_timeout_s": 1.0}}})
    )
    diagnostics = peer.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=100))
    processes = start_nodes(params, ("camera",), namespace="s", log_dir=tmp_path)
    try:
        # Nothing listens on port 9: the camera retries, saying why, with the URI in its messages.
        wait_for(
            lambda: alive(processes, tmp_path) and "connection refused" in json.dumps(latest(diagnostics, "/s/camera"))
        )
        readback = ros2_at_node("param", "get", "/s/camera", "uri")
        service = get_parameters(peer.node, "/s/camera", ["uri", "source"])
    finally:
        codes = stop_nodes(processes)
    assert codes == [0]
    assert readback.returncode == 0, readback.stderr
    assert readback.stdout.strip() == f"String value is: {shown}"
    assert [v.string_value for v in service] == [shown, "stream"]
    log = (tmp_path / "s_camera.log").read_text(errors="replace")
    said = log + json.dumps([[s.message, diagnostic_values(s)] for m in diagnostics for s in m.status])
    assert shown in said  # the URI is in the messages (control: they do quote it)...
    assert password not in said and token not in said  # ...never its secrets


class AuthMjpegServer:
    """An HTTP MJPEG camera on 127.0.0.1 that wants basic auth (viewer:<password>): counts the requests it
    refused and the ones it served."""

    def __init__(self, password: str, jpegs: list[bytes]) -> None:
        expected = "Basic " + base64.b64encode(f"viewer:{password}".encode()).decode()
        self.refused = self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != expected:
                    server.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for index in range(600):
                        jpeg = jpegs[index % len(jpegs)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("right", [True, False], ids=["right-password", "wrong-password"])
def test_password_from_the_environment_opens_the_stream_and_shows_nowhere(
    right: bool, peer: Peer, tmp_path: Path
) -> None:
    password = pysecrets.token_urlsafe(12)
    given = password if right else pysecrets.token_urlsafe(12)
    server = AuthMjpegServer(password, [cv2.imencode(".jpg", p)[1].tobytes() for p in frame_pixels(3)])
    uri = f"http://viewer:${{EV_TEST_CAM_PASSWORD}}@127.0.0.1:{server.port}/cam.mjpg"
    params = tmp_path / "camera.yaml"
    params.write_text(yaml.safe_dump({"/**/camera": {"ros__parameters": {"source": "stream", "uri": uri}}}))
    images = peer.listen("/m/image_raw", Image, QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    diagnostics = peer.listen("/diagnostics", DiagnosticArray, QoSProfile(depth=100))
    env = dict(os.environ, EV_TEST_CAM_PASSWORD=given)
    processes = start_nodes(params, ("camera",), namespace="m", log_dir=tmp_path, env=env)
    try:
        if right:
            wait_for(lambda: alive(processes, tmp_path) and len(images) >= 3, state=lambda: server.refused)
        else:
            wait_for(
                lambda: alive(processes, tmp_path) and "401" in json.dumps(latest(diagnostics, "/m/camera")),
                state=lambda: server.refused,
            )
        service = get_parameters(peer.node, "/m/camera", ["uri"])
    finally:
        codes = stop_nodes(processes)
        server.close()
    assert codes == [0]
    assert (server.served > 0) is right  # the real password was sent to the camera (or, wrong, refused)
    assert service[0].string_value == f"http://viewer:***@127.0.0.1:{server.port}/cam.mjpg"
    log = (tmp_path / "m_camera.log").read_text(errors="replace")
    said = log + json.dumps([[s.message, diagnostic_values(s)] for m in diagnostics for s in m.status])
    assert given not in said, said[-2000:]
    if not right:  # the refusal is reported, naming the stream without its password
        assert f"viewer:***@127.0.0.1:{server.port}" in said and "401" in said


# -- DDS bound to loopback ----------------------------------------------------------------------------------


def udp_sockets(pid: int) -> list[str]:
    """Local addresses (ip:port) of the UDP sockets process ``pid`` holds (from /proc: no tool needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            address, port = fields[1].split(":")
            ip = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
            found.append(f"{ip}:{int(port, 16)}")
    for line in Path(f"/proc/{pid}/net/udp6").read_text().splitlines()[1:]:
        if line.split()[9] in inodes:
            found.append("ipv6:" + line.split()[1])
    return found


@pytest.mark.parametrize("profiled", [True, False], ids=["with-profile", "without-profile"])
def test_dds_sockets_are_bound_to_loopback_with_the_profile(profiled: bool, peer: Peer, tmp_path: Path) -> None:
    """A real node (the tracker, waiting for label_info) started as scripts/env.sh starts it: every UDP socket
    on 127.0.0.1, and still heard by this test's participant (default transports, LOCALHOST range). Control:
    the same node without the profile binds 0.0.0.0."""
    diagnostics = peer.listen("/diagnostics", DiagnosticArray)
    if profiled:
        env = dict(
            os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE), ROS_AUTOMATIC_DISCOVERY_RANGE="SYSTEM_DEFAULT"
        )
    else:
        env = dict(
            os.environ,
            FASTDDS_DEFAULT_PROFILES_FILE="",
            SKIP_DEFAULT_XML_FILE="1",
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        )
    processes = start_nodes(params_file(tmp_path / "p.yaml"), ("tracker",), namespace="d", log_dir=tmp_path, env=env)
    try:
        wait_for(lambda: alive(processes, tmp_path) and bool(latest(diagnostics, "/d/tracker")))
        sockets = udp_sockets(processes[0].pid)
    finally:
        stop_nodes(processes)
    assert sockets, "the node holds no UDP socket"
    if profiled:
        assert all(s.startswith("127.0.0.1:") for s in sockets), sockets
    else:
        assert any(s.startswith("0.0.0.0:") for s in sockets), sockets


# -- telemetry ----------------------------------------------------------------------------------------------


def test_dependency_telemetry_is_off_once_a_detector_is_built(tmp_path: Path) -> None:
    """openvino_telemetry (OpenVINO's model conversion) sends usage data when no consent file exists: the
    default here (a fresh HOME, not in CI). Building a detector switches it off for the process."""
    script = f"""
from openvino_telemetry.utils.opt_in_checker import OptInChecker, ConsentCheckResult
import openvino_telemetry
before = OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True)
from edge_vision.core.detection.detector import Detector
Detector.from_config({str(MODEL)!r}, labels={str(LABELS)!r})
after = OptInChecker().check(enable_opt_in_dialog=False, disable_in_ci=True)
consent = openvino_telemetry.Telemetry(app_name="edge_vision_test", app_version="0", tid="G-TEST", backend="ga4",
                                       enable_opt_in_dialog=False, disable_in_ci=True).consent
print(before.name, after.name, consent)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NO_FILE", "DECLINED", "False"]
    assert not (tmp_path / "intel").exists()  # nothing written to the user's consent folder
    telemetry.disable()  # idempotent


# -- silent wrong data --------------------------------------------------------------------------------------


def write_video(
    path: Path,
    pictures: list[np.ndarray],
    pts: list[int],
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    time_base: Fraction = Fraction(1, 1000),
) -> Path:
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=30)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        for picture, at in zip(pictures, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts, frame.time_base = at, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_variable_frame_rate_file_is_stamped_from_each_frames_pts(tmp_path: Path) -> None:
    """20 frames at 30 fps, then 20 at 2 fps: 10.2 s of video. Stamped from the frame index and the average rate
    it read as 1.3 s."""
    pts = [i * 33 for i in range(20)] + [700 + i * 500 for i in range(20)]
    clip = write_video(tmp_path / "vfr.mkv", frame_pixels(40), pts)
    with FileSource(str(clip)) as source:
        frames = list(source.frames())
        index_span_s = (len(frames) - 1) / source.fps
    stamps = np.array([f.stamp_ns for f in frames]) - frames[0].stamp_ns
    np.testing.assert_allclose(stamps / 1e6, pts, atol=1.0)
    assert index_span_s < 2.0  # control: what index / fps stamping gave
    assert not source.warnings


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real 60-frame recording in MKV (H.264), AVI (MPEG-4), MP4 (H.264, index at the end) and MP4 with
    faststart (index first), each also cut at half its bytes, as a recording stopped by a power loss."""
    folder = tmp_path_factory.mktemp("clips")
    pictures = frame_pixels(60, (768, 576))  # the size the shipped config's rules are drawn for
    pts = [i * 100 for i in range(60)]
    made = {
        "mkv": write_video(folder / "full.mkv", pictures, pts),
        "avi": write_video(folder / "full.avi", pictures, list(range(60)), codec="mpeg4", time_base=Fraction(1, 10)),
        "mp4": write_video(folder / "full.mp4", pictures, pts),
        "faststart.mp4": write_video(folder / "full.faststart.mp4", pictures, pts, options={"movflags": "faststart"}),
    }
    for name, full in list(made.items()):
        cut = folder / f"cut.{name}"
        data = full.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        made[f"cut.{name}"] = cut
    return made


@pytest.mark.parametrize("kind", ["mkv", "avi", "faststart.mp4"])
def test_truncated_file_warns_naming_the_file_and_how_far_it_got(kind: str, clips: dict[str, Path]) -> None:
    with FileSource(str(clips[kind])) as whole:
        assert len(list(whole.frames())) == 60 and not whole.warnings  # control: the complete file is quiet
    with FileSource(str(clips[f"cut.{kind}"])) as cut:
        frames = list(cut.frames())
    assert 0 < len(frames) < 55
    assert len(cut.warnings) == 1
    warning = cut.warnings[0]
    assert warning.startswith(f"video {clips[f'cut.{kind}']} ends early: decoded {len(frames)} frames, ")
    reached, total = (float(v) for v in re.findall(r"([\d.]+) s", warning)[:2])
    # Media time reached: with B-frames, frames whose references were cut away are missing before it.
    assert len(frames) * 0.1 - 0.15 <= reached < total - 1 and total == pytest.approx(6.0, abs=0.1)
    assert "truncated" in warning
    strict = FileSource(str(clips[f"cut.{kind}"]), strict=True)  # camera.strict: an error instead
    with strict, pytest.raises(SourceError, match=r"ends early.*\(camera\.strict\)"):
        list(strict.frames())


def test_mp4_cut_before_its_index_is_an_error_that_says_so(clips: dict[str, Path]) -> None:
    with pytest.raises(SourceError, match=r"cut\.mp4.*has no index \(moov atom\)"):
        FileSource(str(clips["cut.mp4"]))


def test_truncated_file_run_exits_0_with_the_warning_in_summary_and_diagnostics(
    clips: dict[str, Path], tmp_path: Path, ros_context: Context
) -> None:
    cut = clips["cut.mkv"]
    done = subprocess.run(
        cli("run", "--video", str(cut), "--output-dir", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] and f"video {cut} ends early" in summary["health"]
    assert [w for w in summary["warnings"] if w.startswith(f"source_warning: video {cut} ends early")]
    # The same through the ROS executable's health, as /diagnostics shows it.
    sections = quiet_sections()
    sections["camera"] = camera_with(sections, uri=str(cut))
    status = final_diagnostics(sections, ros_context)
    assert status["source_warning"].startswith(f"WARN: video {cut} ends early")
    # camera.strict: the same file fails the run, naming it.
    strict = config.load_file(CONFIG)
    strict["camera"] = camera_with(strict, strict=True)
    path = config.write_ros_parameters(strict, tmp_path / "strict.yaml")
    done = subprocess.run(
        cli("run", str(path), "--video", str(cut), "--output-dir", str(tmp_path / "strict")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert f"video {cut} ends early" in done.stderr and "camera.strict" in done.stderr


def camera_with(sections: dict[str, dict[str, Any]], **values: Any) -> dict[str, Any]:
    """The camera section re-resolved with ``values`` (its resolved form keeps per-camera groups apart)."""
    body = {k: v for k, v in sections["camera"].items() if k != "cameras"}
    return config.resolve("camera", {**body, **sections["camera"].get("cameras", {}), **values})


def nan_model(path: Path) -> Path:
    """YOLOX-nano whose boxes are NaN for every stride-8 anchor (its first 52 x 52 = 2704 rows at 416 x 416):
    the scores stay real, so those rows would pass the threshold."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(MODEL))
    output = model.graph.output[0]
    mask = np.zeros((1, 3549, 85), np.float32)
    mask[:, :2704, :4] = np.nan
    model.graph.initializer.append(numpy_helper.from_array(mask, "nan_mask"))
    model.graph.node.append(helper.make_node("Add", [output.name, "nan_mask"], ["output_nan"]))
    output.name = "output_nan"
    onnx.save(model, str(path))
    return path


def test_nan_model_outputs_are_dropped_counted_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ros_context: Context
) -> None:
    model = nan_model(tmp_path / "nan.onnx")
    detector = Detector.from_config(model, labels=LABELS)
    picture = frame_pixels(1, (768, 576))[0]
    tensor, _ = detector.adapter.preprocess(picture)
    raw = detector.backend.infer(tensor)[0][0]
    # Control: rows with NaN boxes and an objectness above the threshold exist (small people, stride 8).
    assert np.count_nonzero(np.isnan(raw[:, 0]) & (raw[:, 4] >= 0.3)) > 0
    with caplog.at_level(logging.WARNING, logger="edge_vision.core.detection.detector"):
        found = detector.detect(picture)
    assert len(found) > 0 and np.isfinite(found.xyxy).all() and np.isfinite(found.scores).all()
    assert detector.invalid > 0
    assert any("NaN/inf" in r.getMessage() and str(detector.invalid) in r.getMessage() for r in caplog.records)
    # Through a pipeline: a WARN condition on /diagnostics (kept in the run's final report).
    sections = quiet_sections()
    sections["camera"] = camera_with(sections, max_frames=5)
    sections["detector"] = config.resolve(
        "detector", {**sections["detector"], "model": str(model), "labels": str(LABELS)}
    )
    status = final_diagnostics(sections, ros_context)
    assert status["model_output"].startswith("WARN: dropped ") and "NaN/inf" in status["model_output"]


@pytest.mark.parametrize("count", [79, 81])
def test_labels_file_of_the_wrong_length_names_both_counts(count: int, tmp_path: Path) -> None:
    labels = tmp_path / f"labels{count}.txt"
    labels.write_text("\n".join([*COCO, "extra"][:count]) + "\n")
    with pytest.raises(
        ConfigError, match=rf"detector\.labels: {labels} has {count} class names but model .* predicts 80"
    ):
        Detector.from_config(MODEL, labels=labels)
    assert len(Detector.from_config(MODEL, labels=LABELS).labels) == 80  # control: the right file


def test_duplicate_yaml_keys_name_the_key_and_both_lines(tmp_path: Path) -> None:
    text = CONFIG.read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("confidence:"))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 2, f"{indent}confidence: 0.9")  # the second one used to win silently
    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ConfigError,
        match=rf"{duplicated}: key 'confidence' appears twice in one mapping "
        rf"\(line {at + 3}, first on line {at + 1}\)",
    ):
        config.load_file(duplicated)
    done = subprocess.run(cli("run", str(duplicated)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "key 'confidence' appears twice" in done.stderr


def test_dynamic_shape_model_without_an_input_size_names_the_parameter(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(MODEL))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for index, name in ((2, "height"), (3, "width")):
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "anchors"
    del model.graph.value_info[:]
    dynamic = tmp_path / "dynamic.onnx"
    onnx.save(model, str(dynamic))
    with pytest.raises(ModelError, match=r"dynamic height/width .*set detector\.input_size"):
        Detector.from_config(dynamic, labels=LABELS)
    sized = Detector.from_config(dynamic, labels=LABELS, backend_params={"input_size": [416, 416]})
    assert len(sized.detect(frame_pixels(1, (768, 576))[0])) > 3  # control: with the size it runs
