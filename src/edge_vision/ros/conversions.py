"""Core types <-> ROS messages. Pure functions; malformed messages raise ``MessageError`` naming the field.

Every received message is untrusted (any process on the DOMAIN may publish it): sizes are checked against the
data before anything is allocated or indexed, numbers against their ranges (a track id must fit 64 bits, a
class id the labels, a box and score must be finite), and counts and pixel totals against limits no real
camera or detector reaches. A compressed image is decoded only when it is a JPEG or PNG whose header gives a
size within the limit: a few hundred bytes of PNG can declare 50000 x 50000 pixels (7.5 GB as bgr8).
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import (
    Detection2D,
    Detection2DArray,
    LabelInfo,
    ObjectHypothesisWithPose,
    VisionClass,
)

from edge_vision.core.detections import Detections
from edge_vision.core.errors import EdgeVisionError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame
from edge_vision.core.runtime.health import LEVEL_NAMES, Report
from edge_vision_msgs.msg import Event as EventMsg
from edge_vision_msgs.msg import PipelineStats, StageLatency


class MessageError(EdgeVisionError):
    """A received message cannot be turned into a core type."""


# 8192 x 8192: twice an 8K UHD frame (7680 x 4320); a frame this size is 200 MB as bgr8.
MAX_PIXELS = 8192 * 8192
MAX_SIDE = 65536
# detector.max_detections allows up to 10000 per frame: our own detector's messages always fit.
MAX_DETECTIONS = 10_000
MAX_CLASSES = 10_000  # LabelInfo entries
_INT64_MAX = 2**63 - 1


def _check_size(width: int, height: int, what: str) -> None:
    if width == 0 or height == 0:
        raise MessageError(f"{what} has zero size {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MessageError(
            f"{what} of {width}x{height} pixels exceeds the limit of {MAX_PIXELS} pixels ({MAX_SIDE} a side)"
        )


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def frame_header(frame: Frame) -> Header:
    return Header(stamp=ns_to_stamp(frame.stamp_ns), frame_id=frame.camera_id)


def frame_to_image(frame: Frame) -> Image:
    image = frame.image
    msg = Image(header=frame_header(frame), height=frame.height, width=frame.width, encoding=frame.encoding)
    msg.is_bigendian = 0
    msg.step = frame.width * image.shape[2]
    # One memcpy into an array.array: assigning a numpy array to msg.data converts element by element (~300 ms
    # for 1080p), and so does array.array("B", buffer) (~40 ms at 768x576); frombytes is a memcpy (~0.1 ms).
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(image).data.cast("B"))
    msg.data = data
    return msg


# encoding -> (bytes per pixel, OpenCV conversion to bgr8 or None for a zero-copy view). In sensor_msgs,
# "yuv422" is UYVY and "yuv422_yuy2" is YUYV (image_encodings.hpp).
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "bgr8": (3, None),
    "rgb8": (3, None),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, cv2.COLOR_GRAY2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "8UC3": (3, None),
    "yuv422": (2, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (2, cv2.COLOR_YUV2BGR_YUY2),
}
_DEEP = ("16", "32", "64")  # mono16, bgr16, rgba16, 16UC1, 32FC1...: not 8 bits per channel


def image_to_frame(msg: Image, sequence: int = 0) -> Frame:
    """A bgr8 ``Frame`` from any common 8-bit encoding. bgr8 is a view on the message's buffer (no copy; the
    frame lives as long as the message), rgb8 a channel-reversed view; the others are converted (one copy)."""
    encoding = msg.encoding
    spec = _ENCODINGS.get(encoding)
    if spec is None:
        if any(bits in encoding for bits in _DEEP):
            raise MessageError(
                f"Image encoding {encoding!r} has more than 8 bits per channel: the detectors take 8-bit images "
                "(convert upstream, e.g. scale mono16 depth or thermal to mono8)"
            )
        raise MessageError(f"Image encoding {encoding!r} is not supported; expected one of {sorted(_ENCODINGS)}")
    channels, conversion = spec
    _check_size(msg.width, msg.height, "Image")
    row = msg.width * channels
    if msg.step < row:
        raise MessageError(f"Image step {msg.step} is smaller than width*bytes per pixel {row}")
    if msg.is_bigendian and channels == 2:
        raise MessageError("big-endian 2-byte-per-pixel images are not supported")
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    if buffer.size < msg.step * msg.height:
        raise MessageError(f"Image data has {buffer.size} bytes; step*height needs {msg.step * msg.height}")
    rows = buffer[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    if conversion is None:
        pixels = rows.reshape(msg.height, msg.width, 3)
        if encoding == "rgb8":
            pixels = pixels[..., ::-1]
    else:
        planes = rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows
        pixels = cv2.cvtColor(np.ascontiguousarray(planes), conversion)
    return Frame(
        image=pixels,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        camera_id=msg.header.frame_id,
        sequence=sequence,
        encoding="bgr8",
    )


def compressed_to_frame(msg: CompressedImage, sequence: int = 0) -> Frame:
    """A bgr8 ``Frame`` from a JPEG or PNG ``CompressedImage`` (what image_transport's compressed plugin sends)."""
    if "compressedDepth" in msg.format:
        raise MessageError(f"CompressedImage format {msg.format!r} is a depth image; the detectors take colour images")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise MessageError("CompressedImage has no data")
    try:
        kind, width, height = compressed_size(bytes(msg.data[:_HEADER_BYTES]))
    except MessageError as exc:
        raise MessageError(f"CompressedImage ({msg.format!r}, {data.size} bytes) could not be decoded: {exc}") from exc
    _check_size(width, height, f"CompressedImage ({kind})")
    pixels = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if pixels is None:
        raise MessageError(f"CompressedImage ({msg.format!r}, {data.size} bytes) could not be decoded as JPEG or PNG")
    return Frame(
        image=pixels,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        camera_id=msg.header.frame_id,
        sequence=sequence,
        encoding="bgr8",
    )


_HEADER_BYTES = 1 << 16  # a JPEG's frame header follows its EXIF/ICC segments: within the first 64 KiB here
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...): C0-CF except DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # markers without a length: TEM, RST0-7


def compressed_size(head: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header of a JPEG or PNG, without decoding it. MessageError for any other
    format (OpenCV would also decode TIFF, WebP, JPEG 2000...: more decoders exposed to untrusted input than a
    camera driver's JPEG/PNG needs) or a header that does not say. Written here because OpenCV cannot read a size
    without decoding and a header parser is not worth a dependency (Pillow) for two formats."""
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise MessageError("PNG without an IHDR header")
        return "png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        at = 2
        while at + 4 <= len(head):
            if head[at] != 0xFF:
                raise MessageError(f"JPEG marker expected at byte {at}")
            marker = head[at + 1]
            if marker == 0xFF:  # fill byte
                at += 1
                continue
            if marker in _STANDALONE:
                at += 2
                continue
            length = int.from_bytes(head[at + 2 : at + 4], "big")
            if marker in _SOF:
                if at + 9 > len(head):
                    break
                height = int.from_bytes(head[at + 5 : at + 7], "big")
                width = int.from_bytes(head[at + 7 : at + 9], "big")
                return "jpeg", width, height
            if marker in (0xD9, 0xDA) or length < 2:  # end of image / start of scan before any frame header
                break
            at += 2 + length
        raise MessageError(f"no JPEG frame header in the first {len(head)} bytes")
    raise MessageError(f"not JPEG or PNG (starts with {head[:8].hex()})")


def detections_to_msg(detections: Detections, header: Header, labels: Sequence[str]) -> Detection2DArray:
    """Boxes in source pixels; class_id is the class NAME (as vision_msgs recommends), ``id`` the track id."""
    out = Detection2DArray(header=header)
    xyxy = detections.xyxy.tolist()
    scores = detections.scores.tolist()
    classes = detections.class_ids.tolist()
    tracks = detections.track_ids.tolist()
    n_labels = len(labels)
    for (x1, y1, x2, y2), score, class_id, track_id in zip(xyxy, scores, classes, tracks, strict=True):
        det = Detection2D(header=header)
        det.bbox.center.position.x = (x1 + x2) * 0.5
        det.bbox.center.position.y = (y1 + y2) * 0.5
        det.bbox.size_x = x2 - x1
        det.bbox.size_y = y2 - y1
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = labels[class_id] if 0 <= class_id < n_labels else str(class_id)
        hypothesis.hypothesis.score = score
        det.results.append(hypothesis)
        det.id = str(track_id) if track_id >= 0 else ""
        out.detections.append(det)
    return out


def msg_to_detections(msg: Detection2DArray, labels: Sequence[str]) -> Detections:
    """Boxes, scores, class ids (a name of ``labels`` or an index into them) and track ids (``id``: a
    non-negative integer or empty). MessageError naming the detection and the field for anything else."""
    n = len(msg.detections)
    if n > MAX_DETECTIONS:
        raise MessageError(f"Detection2DArray has {n} detections; at most {MAX_DETECTIONS} are taken")
    index = {name: i for i, name in enumerate(labels)}
    boxes = np.empty((n, 4), np.float64)
    scores = np.empty(n, np.float64)
    class_ids = np.empty(n, np.int32)
    track_ids = np.full(n, -1, np.int64)
    for i, det in enumerate(msg.detections):
        bbox = det.bbox
        boxes[i] = (bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y)
        if not det.results:
            raise MessageError(f"Detection2D #{i} has no results (class hypothesis)")
        best = det.results[0].hypothesis
        scores[i] = best.score
        class_ids[i] = _class_index(best.class_id, index, len(labels), i)
        if det.id:
            track_ids[i] = _track_id(det.id, i)
    _check_numbers(boxes, scores)
    centers, half = boxes[:, :2], boxes[:, 2:] * 0.5
    xyxy = np.concatenate([centers - half, centers + half], axis=1)
    return Detections(xyxy.astype(np.float32), scores.astype(np.float32), class_ids, track_ids)


def _class_index(class_id: str, index: dict[str, int], count: int, i: int) -> int:
    if class_id in index:
        return index[class_id]
    digits = class_id.removeprefix("-")
    if digits.isdigit() and len(digits) <= 18:  # beyond that it cannot be an index (and int() would be slow)
        value = int(class_id)
        if 0 <= value < count:
            return value
        raise MessageError(f"Detection2D #{i} class_id {value} is outside the {count} labels (0..{count - 1})")
    shown = class_id if len(class_id) <= 40 else f"{class_id[:40]}... ({len(class_id)} characters)"
    raise MessageError(f"Detection2D #{i} class_id {shown!r} is not one of the {count} labels")


def _track_id(text: str, i: int) -> int:
    shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
    if len(text) > 20 or not text.isdigit():  # str.isdigit also rejects signs, spaces and underscores
        raise MessageError(f"Detection2D #{i} id {shown!r} is not a non-negative integer track id")
    value = int(text)
    if value > _INT64_MAX:
        raise MessageError(f"Detection2D #{i} id {shown} does not fit a 64-bit track id")
    return value


def _check_numbers(boxes: np.ndarray, scores: np.ndarray) -> None:
    """Finite boxes with sizes >= 0 that fit float32, scores in [0, 1] (vision_msgs' convention)."""
    bad_box = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2:] < 0).any(axis=1) | (np.abs(boxes) > 1e30).any(axis=1)
    if bad_box.any():
        i = int(np.flatnonzero(bad_box)[0])
        cx, cy, w, h = boxes[i].tolist()
        raise MessageError(f"Detection2D #{i} bbox (center {cx}, {cy}, size {w} x {h}) is not a finite box")
    bad_score = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
    if bad_score.any():
        i = int(np.flatnonzero(bad_score)[0])
        raise MessageError(f"Detection2D #{i} score {scores[i]} is not within [0, 1]")


def labels_from_msg(msg: LabelInfo) -> list[str]:
    """Class names by id from a LabelInfo (ids 0..N-1; a gap reads as the id's number)."""
    by_id: dict[int, str] = {}
    if len(msg.class_map) > MAX_CLASSES:
        raise MessageError(f"LabelInfo has {len(msg.class_map)} classes; at most {MAX_CLASSES} are taken")
    for entry in msg.class_map:
        if entry.class_id >= MAX_CLASSES:
            raise MessageError(f"LabelInfo class_id {entry.class_id} is beyond {MAX_CLASSES - 1}")
        if entry.class_id in by_id:
            raise MessageError(f"LabelInfo lists class_id {entry.class_id} twice")
        if not entry.class_name.strip() or len(entry.class_name) > 256:
            raise MessageError(
                f"LabelInfo class_id {entry.class_id} has no usable name ({len(entry.class_name)} chars)"
            )
        by_id[entry.class_id] = entry.class_name
    if not math.isfinite(msg.threshold):
        raise MessageError(f"LabelInfo threshold {msg.threshold} is not finite")
    return [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]


def label_info(labels: Sequence[str], header: Header | None = None, threshold: float = 0.0) -> LabelInfo:
    msg = LabelInfo(header=header or Header())
    msg.class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(labels)]
    msg.threshold = float(threshold)
    return msg


def event_to_msg(event: Event) -> EventMsg:
    msg = EventMsg()
    msg.header = Header(stamp=ns_to_stamp(event.stamp_ns), frame_id=event.camera_id)
    msg.camera_id = event.camera_id
    msg.device_id = event.device_id
    msg.kind = event.kind
    msg.rule = event.rule
    msg.direction = event.direction
    msg.track_id = event.track_id
    msg.class_id = event.class_id
    msg.class_name = event.class_name
    msg.score = float(event.score)
    msg.bbox_xyxy = [float(v) for v in event.xyxy]
    msg.sequence = event.sequence
    return msg


def stats_to_msg(report: Report, camera_id: str, stamp: Time, device_id: str = "") -> PipelineStats:
    msg = PipelineStats()
    msg.header = Header(stamp=stamp, frame_id=camera_id)
    msg.camera_id = camera_id
    msg.device_id = device_id
    msg.level = bytes([report.level])
    msg.message = report.message
    msg.stages = [
        StageLatency(
            name=s.name,
            last_ms=float(s.last_ms),
            mean_ms=float(s.mean_ms),
            max_ms=float(s.max_ms),
            p50_ms=float(s.p50_ms),
            p99_ms=float(s.p99_ms),
            fps=float(s.fps),
            processed=s.processed,
            errors=s.errors,
            dropped=s.dropped,
            queue_depth=s.queue_depth,
        )
        for s in report.stages
    ]
    msg.fps = float(report.fps)
    msg.pipeline_latency_ms = float(report.latency_ms)
    msg.pipeline_latency_p99_ms = float(report.latency_p99_ms)
    msg.frames_decoded = report.frames_decoded
    msg.frames_processed = report.frames_processed
    msg.frames_skipped = report.frames_skipped
    msg.frames_dropped = report.frames_dropped
    msg.errors = report.errors
    return msg


def report_to_status(report: Report, name: str, hardware_id: str, device_id: str = "") -> DiagnosticStatus:
    """The same figures as a DiagnosticStatus (rqt_robot_monitor, fleet health tooling): OK, WARN while frames
    are dropped or a stage fails now and then, ERROR once a stage exhausted its error budget or a source failed."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=report.message)
    status.level = bytes([report.level])
    values = {
        **({"device_id": device_id} if device_id else {}),
        "fps": f"{report.fps:.2f}",
        "pipeline_latency_ms": f"{report.latency_ms:.2f}",
        "pipeline_latency_p99_ms": f"{report.latency_p99_ms:.2f}",
        "frames_decoded": str(report.frames_decoded),
        "frames_processed": str(report.frames_processed),
        "frames_skipped": str(report.frames_skipped),
        "frames_dropped": str(report.frames_dropped),
        "errors": str(report.errors),
    }
    for source in report.sources:
        prefix = f"source_{source.camera or 'camera'}"
        values[f"{prefix}_state"] = source.state
        if source.decoder:  # a live source (stream, v4l2): its own figures
            values[f"{prefix}_message"] = source.message
            values[f"{prefix}_fps"] = f"{source.fps:.2f}"
            values[f"{prefix}_decode_ms"] = f"{source.decode_ms:.2f}"
            values[f"{prefix}_dropped"] = str(source.frames_dropped)
            values[f"{prefix}_reconnects"] = str(source.reconnects)
            values[f"{prefix}_frame_age_ms"] = f"{source.frame_age_ms:.0f}"
            values[f"{prefix}_decoder"] = source.decoder
    for condition in report.conditions:
        prefix = f"{condition.name}_{condition.camera}" if condition.camera else condition.name
        values[prefix] = f"{LEVEL_NAMES[condition.level]}: {condition.message}"
    for stage in report.stages:
        values[f"{stage.name}_p50_ms"] = f"{stage.p50_ms:.2f}"
        values[f"{stage.name}_p99_ms"] = f"{stage.p99_ms:.2f}"
        values[f"{stage.name}_fps"] = f"{stage.fps:.2f}"
        if stage.dropped:
            values[f"{stage.name}_dropped"] = str(stage.dropped)
        if stage.errors:
            values[f"{stage.name}_errors"] = str(stage.errors)
        if stage.queue_depth:
            values[f"{stage.name}_queue_depth"] = str(stage.queue_depth)
    status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
    return status
