"""``make_bag``: a video file as a bag of ``image_raw`` images stamped with their media time, the input a bag
replay regression test (or a robot-less demo) feeds to the pipeline.

Frames are decoded the way the pipeline's file source decodes them (PyAV, one thread, ``bgr24``), so a replay
of the bag gives the detector the very pixels a run on the file gives it. The stamp of each frame is its
presentation time (``pts * time_base``) plus ``start_ns``: the same bag always has the same stamps, unlike a
live run whose file clock starts at the wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_vision.bag.io import BagWriter, qos
from edge_vision.bag.types import COMPRESSED_IMAGE, IMAGE, BagError, typestore
from edge_vision.core.errors import SourceError

FORMATS = ("raw", "png", "jpeg")


@dataclass(frozen=True, slots=True)
class MadeBag:
    path: Path
    topic: str
    frames: int
    stamps_ns: list[int]
    width: int
    height: int


def _stamp(ns: int) -> object:
    time_type = typestore().types["builtin_interfaces/msg/Time"]
    return time_type(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image_cdr(pixels: NDArray[np.uint8], stamp_ns: int, frame_id: str) -> bytes:
    """A bgr8 sensor_msgs/Image, serialized."""
    store = typestore()
    header = store.types["std_msgs/msg/Header"](stamp=_stamp(stamp_ns), frame_id=frame_id)
    height, width = pixels.shape[:2]
    msg = store.types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding="bgr8",
        is_bigendian=0,
        step=width * 3,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )
    return bytes(store.serialize_cdr(msg, IMAGE))


def compressed_cdr(pixels: NDArray[np.uint8], stamp_ns: int, frame_id: str, fmt: str) -> bytes:
    """A sensor_msgs/CompressedImage (``png``: lossless; ``jpeg``: quality 95), serialized."""
    ok, encoded = cv2.imencode(".png" if fmt == "png" else ".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise BagError(f"could not encode a {pixels.shape} frame as {fmt}")
    store = typestore()
    header = store.types["std_msgs/msg/Header"](stamp=_stamp(stamp_ns), frame_id=frame_id)
    msg = store.types[COMPRESSED_IMAGE](header=header, format=f"bgr8; {fmt} compressed bgr8", data=encoded.reshape(-1))
    return bytes(store.serialize_cdr(msg, COMPRESSED_IMAGE))


def make_bag(
    video: str | Path,
    bag: str | Path,
    *,
    storage: str = "mcap",
    topic: str = "/image_raw",
    frame_id: str = "camera",
    max_frames: int = 0,
    start_ns: int = 0,
    fmt: str = "raw",
) -> MadeBag:
    """Write the frames of ``video`` to a new bag at ``bag``. ``fmt`` raw: sensor_msgs/Image on ``topic``;
    png / jpeg: sensor_msgs/CompressedImage on ``topic``/compressed (image_transport's naming)."""
    import av

    if fmt not in FORMATS:
        raise BagError(f"image format must be one of {list(FORMATS)}, got {fmt!r}")
    if not topic.startswith("/"):
        topic = f"/{topic}"
    video_path = Path(video)
    if not video_path.is_file():
        raise SourceError(f"video file not found: {video_path}")
    try:
        container = av.open(str(video_path))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open video {video_path}: {exc}") from exc
    stamps: list[int] = []
    width = height = 0
    try:
        if not container.streams.video:
            raise SourceError(f"{video_path} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(10)
        name = topic if fmt == "raw" else f"{topic}/compressed"
        with BagWriter(bag, storage) as writer:
            writer.add(name, IMAGE if fmt == "raw" else COMPRESSED_IMAGE, [qos(depth=10)])
            for index, av_frame in enumerate(container.decode(stream)):
                if max_frames and index >= max_frames:
                    break
                # Media time: the frame's pts when the container has one, else its index at the nominal rate.
                media = av_frame.time if av_frame.pts is not None and av_frame.time is not None else index / rate
                stamp_ns = start_ns + round(float(media) * 1e9)
                pixels = av_frame.to_ndarray(format="bgr24")
                height, width = pixels.shape[:2]
                if fmt == "raw":
                    data = image_cdr(pixels, stamp_ns, frame_id)
                else:
                    data = compressed_cdr(pixels, stamp_ns, frame_id, fmt)
                writer.write(name, stamp_ns, data)
                stamps.append(stamp_ns)
    except av.error.FFmpegError as exc:
        raise SourceError(f"error decoding {video_path} after {len(stamps)} frames: {exc}") from exc
    finally:
        container.close()
    if not stamps:
        raise SourceError(f"{video_path}: no frame could be decoded")
    if len(set(stamps)) != len(stamps):
        raise BagError(f"{video_path}: two frames share a media time; the bag's stamps must be unique")
    return MadeBag(Path(bag), name, len(stamps), stamps, width, height)
