"""Every image encoding a camera driver may send, as the detector and the visualizer read it: the same bgr8
pixels from bgr8, rgb8, bgra8, rgba8, mono8 (grey), UYVY and YUYV, and JPEG/PNG CompressedImage; 16-bit and
float images refused with a message naming the encoding; then a standalone detector node fed mono8 and
compressed images over DDS."""

from __future__ import annotations

import array
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from edge_vision.core import config
from edge_vision.ros.container import RosPipeline
from edge_vision.ros.conversions import MessageError, compressed_to_frame, image_to_frame

BGR = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def message(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    height, width = pixels.shape[:2]
    row = pixels.reshape(height, -1)
    if pad:
        row = np.concatenate([row, np.zeros((height, pad), np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=row.shape[1])
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(row).tobytes())
    msg.data = data
    msg.header.frame_id = "cam"
    msg.header.stamp.sec = 12
    return msg


def yuv422(y: int, u: int, v: int, order: str, height: int = 48, width: int = 64) -> np.ndarray:
    """A flat picture packed as 2-byte-per-pixel 4:2:2, UYVY or YUYV."""
    quad = [u, y, v, y] if order == "uyvy" else [y, u, y, v]
    return np.tile(np.array(quad, np.uint8), (height, width // 2))


def bt601(y: int, u: int, v: int) -> np.ndarray:
    """BGR of a BT.601 studio-range YUV triple (what camera drivers' yuv422 is)."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    rgb = [c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d]
    return np.clip(np.round([rgb[2], rgb[1], rgb[0]]), 0, 255)


@pytest.mark.parametrize(
    ("encoding", "pixels", "expected"),
    [
        ("bgr8", BGR, BGR),
        ("rgb8", BGR[..., ::-1], BGR),
        ("bgra8", cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA), BGR),
        ("rgba8", cv2.cvtColor(BGR, cv2.COLOR_BGR2RGBA), BGR),
        (
            "mono8",
            cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY),
            cv2.cvtColor(cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
        ),
    ],
)
def test_8_bit_encodings_give_the_same_bgr_pixels(encoding: str, pixels: np.ndarray, expected: np.ndarray) -> None:
    for pad in (0, 8):  # rows padded past width * channels (step > row) are read correctly too
        frame = image_to_frame(message(pixels, encoding, pad))
        assert frame.encoding == "bgr8" and frame.image.shape == (48, 64, 3)
        np.testing.assert_array_equal(frame.image, expected)
        assert frame.camera_id == "cam" and frame.stamp_ns == 12 * 10**9


def test_bgr8_is_a_view_on_the_message_buffer() -> None:
    msg = message(BGR, "bgr8")
    frame = image_to_frame(msg)
    assert np.shares_memory(frame.image, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize(
    ("encoding", "order"), [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")]
)
def test_yuv422_encodings_decode_to_the_same_picture(encoding: str, order: str) -> None:
    for y, u, v in ((81, 90, 240), (145, 54, 34), (41, 240, 110)):  # BT.601 red, green, blue
        msg = Image(height=48, width=64, encoding=encoding, step=128)
        msg.data = array.array("B", yuv422(y, u, v, order).tobytes())
        frame = image_to_frame(msg)
        assert frame.image.shape == (48, 64, 3)
        assert np.abs(frame.image.astype(int) - bt601(y, u, v)).max() <= 3, (y, u, v, frame.image[0, 0])


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "bgr16", "rgba16", "32FC1", "64FC1"])
def test_deep_images_are_refused_naming_the_encoding(encoding: str) -> None:
    msg = Image(height=2, width=2, encoding=encoding, step=8)
    msg.data = array.array("B", bytes(16))
    with pytest.raises(MessageError, match=f"{encoding}.*more than 8 bits"):
        image_to_frame(msg)


def test_unknown_encoding_and_bad_sizes_name_the_problem() -> None:
    with pytest.raises(MessageError, match="'bayer_rggb8' is not supported"):
        image_to_frame(message(BGR[..., 0], "bayer_rggb8"))
    short = message(BGR, "bgr8")
    short.data = short.data[:100]
    with pytest.raises(MessageError, match="needs"):
        image_to_frame(short)


@pytest.mark.parametrize(("fmt", "extension", "tolerance"), [("jpeg", ".jpg", 40), ("png", ".png", 0)])
def test_compressed_images(fmt: str, extension: str, tolerance: int) -> None:
    smooth = cv2.GaussianBlur(BGR, (9, 9), 3)
    ok, encoded = cv2.imencode(extension, smooth)
    assert ok
    msg = CompressedImage(format=fmt, data=encoded.tobytes())
    msg.header.frame_id = "cam"
    frame = compressed_to_frame(msg)
    assert frame.image.shape == (48, 64, 3)
    assert np.abs(frame.image.astype(int) - smooth.astype(int)).max() <= tolerance
    with pytest.raises(MessageError, match="could not be decoded"):
        compressed_to_frame(CompressedImage(format=fmt, data=b"not an image"))
    with pytest.raises(MessageError, match="depth image"):
        compressed_to_frame(CompressedImage(format="16UC1; compressedDepth", data=encoded.tobytes()))


def serve(ros: RosPipeline) -> tuple[SingleThreadedExecutor, threading.Thread]:
    executor = SingleThreadedExecutor(context=ros.context)
    for node in ros.nodes.values():
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return executor, thread


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_detector_node_takes_mono8_and_compressed_images(transport: str, video: Path) -> None:
    from edge_vision.core.sources.file import FileSource

    with FileSource(str(video), max_frames=1) as source:
        picture = next(source.frames()).image
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    sections = config.load_file(Path(__file__).parents[1] / "config" / "pipeline.yaml")
    sections["detector"] = config.resolve(
        "detector", {**sections["detector"], "image_transport": transport, "input_reliability": "reliable"}
    )
    ros = RosPipeline(("detect",), sections=sections, context=context)
    executor, thread = serve(ros)
    client = rclpy.create_node("test_camera_driver", context=context)
    received: list[Detection2DArray] = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    client.create_subscription(Detection2DArray, "detections", received.append, qos)
    client_executor = SingleThreadedExecutor(context=context)
    client_executor.add_node(client)
    if transport == "raw":
        publisher = client.create_publisher(Image, "image_raw", qos)
        msg = message(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), "mono8")
    else:
        publisher = client.create_publisher(CompressedImage, "image_raw/compressed", qos)
        msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", picture)[1].tobytes())
        msg.header.frame_id = "cam"
    try:
        deadline = time.monotonic() + 20
        while not (publisher.get_subscription_count() and client.count_publishers("detections")):
            assert time.monotonic() < deadline, "detector did not match"
            client_executor.spin_once(timeout_sec=0.1)
        time.sleep(0.3)  # the reader side matches a moment after the writer
        publisher.publish(msg)
        while not received:
            assert time.monotonic() < deadline, "no detections"
            client_executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        thread.join(5)
        ros.close()
        ros.destroy()
        client.destroy_node()
        rclpy.shutdown(context=context)
    people = [d for d in received[0].detections if d.results[0].hypothesis.class_id == "person"]
    assert len(people) >= 2 and received[0].header.frame_id == "cam"
