"""``FoxgloveView``: the running pipeline in Foxglove, over the Foxglove WebSocket protocol (``foxglove-sdk``), with
no ROS bridge and no rclpy. It attaches to the core graph with taps, so every executable gets it from the
``pipeline.foxglove*`` parameters (``edge-vision run --foxglove [PORT]``).

Channels, per camera (under ``/<camera>`` when there are several), named like the ROS topics so one layout
(config/foxglove_layout.json) serves this view and a ROS connection alike:

- ``image_raw/compressed``: foxglove.CompressedImage, JPEG of the source frame (``image_raw``: foxglove.RawImage
  with ``foxglove_image: raw``);
- ``annotations``: foxglove.ImageAnnotations on that image: boxes, ``#id class score`` labels, zone and line
  geometry of the rules (Foxglove draws them: the pipeline does no drawing for the view);
- ``tracks``: JSON, each frame's tracks; ``events``: JSON, one message per event (the event log);
- ``stats``: JSON with the ``edge_vision_msgs/PipelineStats`` field names (plot ``/stats.fps``);
- ``/diagnostics``: ``diagnostic_msgs/msg/DiagnosticArray`` (ros2msg, CDR), what Foxglove's Diagnostics panels read.

Taps only hand over references: one worker thread encodes and sends, so a slow viewer never stalls the
pipeline. Images are latest-wins (one slot per camera); tracks and events are queued (bounded, drops counted).
Nothing is encoded for a channel no client subscribes to.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from edge_vision.core.annotate import color_for
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import FrameMeta
from edge_vision.core.packet import FramePacket

if TYPE_CHECKING:  # runtime.build imports this module: the health types only for annotations
    from foxglove.websocket import ServerListener

    from edge_vision.core.runtime.health import Health, Report

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("jpeg", "raw")
JPEG_QUALITY = 80  # 768x576: ~3 ms to encode and ~60 kB a frame, against 1.3 MB raw
QUEUE = 1000  # tracks/events messages waiting for the worker; beyond, the oldest are dropped (counted)
LINGER_S = 0.2  # before stopping the server with clients connected: what was logged last still goes out
SUBSCRIBE_SETTLE_S = 0.25  # quiet time after a client's last subscription before ``foxglove_wait`` lets frames go

_TIME = {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}}}
_HEADER = {"type": "object", "properties": {"stamp": _TIME, "frame_id": {"type": "string"}}}
_BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
TRACKS_SCHEMA = {
    "title": "edge_vision tracks of one frame",
    "type": "object",
    "properties": {
        "header": _HEADER,
        "tracks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "class_id": {"type": "integer"},
                    "class_name": {"type": "string"},
                    "score": {"type": "number"},
                    "bbox_xyxy": _BOX,
                },
            },
        },
    },
}
EVENT_SCHEMA = {
    "title": "edge_vision event (the fields of edge_vision_msgs/Event)",
    "type": "object",
    "properties": {
        "header": _HEADER,
        "camera_id": {"type": "string"},
        "kind": {"type": "string"},
        "rule": {"type": "string"},
        "direction": {"type": "string"},
        "track_id": {"type": "integer"},
        "class_id": {"type": "integer"},
        "class_name": {"type": "string"},
        "score": {"type": "number"},
        "bbox_xyxy": _BOX,
        "sequence": {"type": "integer"},
    },
}
STATS_SCHEMA = {
    "title": "edge_vision pipeline stats (the fields of edge_vision_msgs/PipelineStats)",
    "type": "object",
    "properties": {
        "header": _HEADER,
        "camera_id": {"type": "string"},
        "level": {"type": "integer"},
        "message": {"type": "string"},
        "fps": {"type": "number"},
        "pipeline_latency_ms": {"type": "number"},
        "pipeline_latency_p99_ms": {"type": "number"},
        "frames_decoded": {"type": "integer"},
        "frames_processed": {"type": "integer"},
        "frames_skipped": {"type": "integer"},
        "frames_dropped": {"type": "integer"},
        "errors": {"type": "integer"},
        "stages": {"type": "array", "items": {"type": "object"}},
    },
}
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"


@dataclass(frozen=True, slots=True)
class FoxgloveOptions:
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (``FoxgloveView.port`` tells which)
    image: str = "jpeg"
    wait: float = 0.0  # seconds ``start`` waits for a client to subscribe before frames flow
    stats_period: float = 1.0

    @classmethod
    def from_pipeline(cls, pipeline: Mapping[str, Any]) -> FoxgloveOptions:
        return cls(
            host=pipeline["foxglove_host"],
            port=pipeline["foxglove_port"],
            image=pipeline["foxglove_image"],
            wait=pipeline["foxglove_wait"],
            stats_period=pipeline["stats_period"],
        )


def _stamp(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _header(meta: FrameMeta) -> dict[str, Any]:
    return {"stamp": _stamp(meta.stamp_ns), "frame_id": meta.camera_id}


def tracks_message(meta: FrameMeta, tracks: Detections, labels: Sequence[str]) -> dict[str, Any]:
    names = [labels[c] if 0 <= c < len(labels) else str(c) for c in tracks.class_ids.tolist()]
    return {
        "header": _header(meta),
        "tracks": [
            {"id": i, "class_id": c, "class_name": n, "score": s, "bbox_xyxy": box}
            for i, c, n, s, box in zip(
                tracks.track_ids.tolist(),
                tracks.class_ids.tolist(),
                names,
                tracks.scores.tolist(),
                tracks.xyxy.tolist(),
                strict=True,
            )
        ],
    }


def event_message(event: Event) -> dict[str, Any]:
    return {
        "header": {"stamp": _stamp(event.stamp_ns), "frame_id": event.camera_id},
        "camera_id": event.camera_id,
        "kind": event.kind,
        "rule": event.rule,
        "direction": event.direction,
        "track_id": event.track_id,
        "class_id": event.class_id,
        "class_name": event.class_name,
        "score": float(event.score),
        "bbox_xyxy": [float(v) for v in event.xyxy],
        "sequence": event.sequence,
    }


def stats_message(report: Report, camera_id: str, stamp_ns: int) -> dict[str, Any]:
    return {
        "header": {"stamp": _stamp(stamp_ns), "frame_id": camera_id},
        "camera_id": camera_id,
        "level": report.level,
        "message": report.message,
        "fps": report.fps,
        "pipeline_latency_ms": report.latency_ms,
        "pipeline_latency_p99_ms": report.latency_p99_ms,
        "frames_decoded": report.frames_decoded,
        "frames_processed": report.frames_processed,
        "frames_skipped": report.frames_skipped,
        "frames_dropped": report.frames_dropped,
        "errors": report.errors,
        "stages": [
            {
                "name": s.name,
                "fps": s.fps,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "processed": s.processed,
                "errors": s.errors,
                "dropped": s.dropped,
                "queue_depth": s.queue_depth,
            }
            for s in report.stages
        ],
    }


def _json_channel(topic: str, name: str, schema: Mapping[str, Any], context: Any) -> Any:
    import foxglove

    described = foxglove.Schema(name=name, encoding="jsonschema", data=json.dumps(schema).encode())
    return foxglove.Channel(topic, schema=described, message_encoding="json", context=context)


def _rgba(bgr: Sequence[int], alpha: float = 1.0) -> Any:
    from foxglove.messages import Color

    b, g, r = (int(v) for v in bgr)
    return Color(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


class _Listener:
    """Counts subscriptions (foxglove-sdk ServerListener protocol) so ``wait_for_client`` can wait for them."""

    def __init__(self) -> None:
        self.subscribed = threading.Event()
        self.subscriptions = 0
        self.last = 0.0

    def on_subscribe(self, client: Any, channel: Any) -> None:
        self.subscriptions += 1
        self.last = time.monotonic()
        self.subscribed.set()

    def on_unsubscribe(self, client: Any, channel: Any) -> None:
        self.subscriptions = max(0, self.subscriptions - 1)


@dataclass
class _CameraChannels:
    name: str
    camera_id: str
    image: Any
    annotations: Any
    tracks: Any
    events: Any
    stats: Any
    rules: list[Any]


class FoxgloveView:
    """Build, ``attach`` to a pipeline (before it starts), ``start`` (serves from then on), ``close``."""

    def __init__(self, options: FoxgloveOptions, *, name: str = "edge_vision") -> None:
        import foxglove

        if options.image not in IMAGE_FORMATS:
            raise ConfigError(f"pipeline.foxglove_image must be one of {list(IMAGE_FORMATS)}, got {options.image!r}")
        self.options = options
        self.name = name
        self.context = foxglove.Context()  # this view's channels only: several pipelines in one process stay apart
        self.listener = _Listener()
        self.cameras: dict[str, _CameraChannels] = {}
        self.labels: list[str] = []
        self.health: Health | None = None
        self.dropped = 0
        self.sent = 0
        self._meta: deque[tuple[str, FrameMeta, Detections | None, list[Event]]] = deque()
        self._latest: dict[str, FramePacket] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._closed = False
        self._worker: threading.Thread | None = None
        self._diagnostics = self._diagnostics_channel()
        try:
            self.server = foxglove.start_server(
                name=name,
                host=options.host,
                port=options.port,
                context=self.context,
                server_listener=cast("ServerListener", self.listener),
            )
        except Exception as exc:  # the SDK raises RuntimeError / OSError subclasses for a taken port
            raise ConfigError(
                f"pipeline.foxglove_port: cannot serve Foxglove on {options.host}:{options.port}: {exc}"
            ) from exc

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return f"ws://{self.options.host}:{self.port}"

    @property
    def topics(self) -> dict[str, str]:
        """Every channel served: topic -> schema name (a JSON channel's schema title)."""
        found = {self._diagnostics.topic(): DIAGNOSTICS_TYPE}
        for channels in self.cameras.values():
            for channel in (channels.image, channels.annotations, channels.tracks, channels.events, channels.stats):
                found[channel.topic()] = channel.schema_name() or ""
        return found

    # -- channels ------------------------------------------------------------------------------------------

    def _diagnostics_channel(self) -> Any:
        import foxglove

        from edge_vision.bag.types import typestore

        msgdef, _ = typestore().generate_msgdef(DIAGNOSTICS_TYPE, ros_version=2)
        schema = foxglove.Schema(name=DIAGNOSTICS_TYPE, encoding="ros2msg", data=msgdef.encode())
        return foxglove.Channel("/diagnostics", schema=schema, message_encoding="cdr", context=self.context)

    def _camera_channels(self, camera: str, camera_id: str, rules: list[Any]) -> _CameraChannels:
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel, RawImageChannel

        prefix = f"/{camera}" if camera else ""
        context = self.context
        image = (
            CompressedImageChannel(f"{prefix}/image_raw/compressed", context=context)
            if self.options.image == "jpeg"
            else RawImageChannel(f"{prefix}/image_raw", context=context)
        )
        return _CameraChannels(
            name=camera,
            camera_id=camera_id,
            image=image,
            annotations=ImageAnnotationsChannel(f"{prefix}/annotations", context=context),
            tracks=_json_channel(f"{prefix}/tracks", "edge_vision.Tracks", TRACKS_SCHEMA, context),
            events=_json_channel(f"{prefix}/events", "edge_vision.Event", EVENT_SCHEMA, context),
            stats=_json_channel(f"{prefix}/stats", "edge_vision.PipelineStats", STATS_SCHEMA, context),
            rules=rules,
        )

    def attach(self, pipeline: Any) -> None:
        """Tap each camera's last stage (events, else track, else detect) of a core ``Pipeline``."""
        from edge_vision.core.runtime.build import stage_name

        self.labels = list(pipeline.labels)
        self.health = pipeline.health
        for camera, parts in pipeline.cameras.items():
            rules = list(parts.events.rules) if parts.events is not None else []
            if not rules and parts.annotate is not None:
                rules = list(parts.annotate.rules)
            self.cameras[camera] = self._camera_channels(camera, parts.camera_id, rules)
            for stage in ("events", "track", "detect", "source"):
                if stage in pipeline.stages:
                    name = stage_name(camera, stage)
                    if stage == "detect" and len(pipeline.cameras) > 1:
                        continue  # shared: each camera's own later stage is tapped instead
                    pipeline.graph.tap(name, lambda packet, c=camera: self._on_packet(c, packet))
                    break

    def _on_packet(self, camera: str, packet: FramePacket) -> None:
        """On the stage's thread: references only."""
        tracks = packet.tracks if packet.tracks is not None else packet.detections
        with self._cond:
            if len(self._meta) >= QUEUE:
                self._meta.popleft()
                self.dropped += 1
            self._meta.append((camera, packet.meta, tracks, list(packet.events)))
            if packet.image is not None:
                self._latest[camera] = packet  # latest wins: an older unsent image is skipped
            self._cond.notify()

    # -- running -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="ev-foxglove", daemon=True)
            self._worker.start()
        if self.options.wait > 0:
            log.info("foxglove: waiting up to %.0f s for a client on %s", self.options.wait, self.url)
            if not self.wait_for_client(self.options.wait):
                log.warning("foxglove: no client subscribed within %.0f s; starting anyway", self.options.wait)

    def wait_for_client(self, timeout: float) -> bool:
        """True once a client has subscribed and its subscriptions have settled: a client (a Foxglove layout)
        subscribes to its channels one by one, and a frame sent in between would miss the later ones."""
        deadline = time.monotonic() + timeout
        if not self.listener.subscribed.wait(timeout):
            return False
        while time.monotonic() - self.listener.last < SUBSCRIBE_SETTLE_S and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = self._closing = True
            self._cond.notify()
        if self._worker is not None:
            self._worker.join(10)
        self._send_stats()  # the final figures
        if self.listener.subscriptions:
            # The SDK has no flush, and stop() drops what is still queued: the final stats were cut off in 1 run
            # of 6 (2 cores, loaded); a short linger for the sender task delivered them in 20 of 20.
            time.sleep(LINGER_S)
        self.server.stop()

    def _work(self) -> None:
        next_stats = time.monotonic()
        while True:
            with self._cond:
                while not self._meta and not self._latest and not self._closing:
                    if not self._cond.wait(max(0.0, next_stats - time.monotonic())):
                        break
                meta = list(self._meta)
                self._meta.clear()
                latest, self._latest = self._latest, {}
                closing = self._closing
            try:
                for camera, frame_meta, tracks, events in meta:
                    self._send_results(self.cameras[camera], frame_meta, tracks, events)
                for camera, packet in latest.items():
                    self._send_image(self.cameras[camera], packet)
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.options.stats_period
                    self._send_stats()
            except Exception:  # a viewer problem must never take the pipeline down
                log.exception("foxglove view: sending failed")
            if closing:
                return

    def _send_results(
        self, channels: _CameraChannels, meta: FrameMeta, tracks: Detections | None, events: list[Event]
    ) -> None:
        if tracks is not None and channels.tracks.has_sinks():
            channels.tracks.log(tracks_message(meta, tracks, self.labels))
            self.sent += 1
        if events and channels.events.has_sinks():
            for event in events:
                channels.events.log(event_message(event))
                self.sent += 1

    def _send_image(self, channels: _CameraChannels, packet: FramePacket) -> None:
        from foxglove.messages import CompressedImage, RawImage, Timestamp

        image = packet.image
        assert image is not None
        meta = packet.meta
        stamp = Timestamp(meta.stamp_ns // 1_000_000_000, meta.stamp_ns % 1_000_000_000)
        if channels.image.has_sinks():
            if self.options.image == "jpeg":
                ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if ok:
                    channels.image.log(
                        CompressedImage(timestamp=stamp, frame_id=meta.camera_id, data=encoded.tobytes(), format="jpeg")
                    )
            else:
                height, width = image.shape[:2]
                data = np.ascontiguousarray(image).tobytes()
                channels.image.log(
                    RawImage(
                        timestamp=stamp,
                        frame_id=meta.camera_id,
                        width=width,
                        height=height,
                        encoding="bgr8",
                        step=width * 3,
                        data=data,
                    )
                )
            self.sent += 1
        if channels.annotations.has_sinks():
            tracks = packet.tracks if packet.tracks is not None else packet.detections
            channels.annotations.log(self._annotations(stamp, tracks, channels.rules))
            self.sent += 1

    def _annotations(self, stamp: Any, tracks: Detections | None, rules: Sequence[Any]) -> Any:
        from foxglove.messages import ImageAnnotations, Point2, PointsAnnotation, PointsAnnotationType, TextAnnotation

        points: list[Any] = []
        texts: list[Any] = []
        for rule in rules:
            color = getattr(rule, "color", (255, 255, 255))
            polygon = getattr(rule, "polygon", None)
            start, end = getattr(rule, "start", None), getattr(rule, "end", None)
            if polygon is not None:
                vertices = np.asarray(polygon, dtype=np.float64).reshape(-1, 2).tolist()
                kind = PointsAnnotationType.LineLoop
                fill = _rgba(color, 0.15)
            elif start is not None and end is not None:
                vertices = [list(map(float, start)), list(map(float, end))]
                kind = PointsAnnotationType.LineStrip
                fill = None
            else:
                continue  # a plugin rule without polygon or start/end geometry: nothing to draw here
            points.append(
                PointsAnnotation(
                    timestamp=stamp,
                    type=kind,
                    points=[Point2(x=x, y=y) for x, y in vertices],
                    outline_color=_rgba(color),
                    fill_color=fill,
                    thickness=2.0,
                )
            )
            texts.append(
                TextAnnotation(
                    timestamp=stamp,
                    position=Point2(x=vertices[0][0], y=vertices[0][1]),
                    text=rule.name,
                    font_size=14.0,
                    text_color=_rgba(color),
                    background_color=_rgba((0, 0, 0), 0.5),
                )
            )
        if tracks is not None:
            keys = np.where(tracks.track_ids >= 0, tracks.track_ids, tracks.class_ids.astype(np.int64)).tolist()
            for (x1, y1, x2, y2), track_id, class_id, score, key in zip(
                tracks.xyxy.tolist(),
                tracks.track_ids.tolist(),
                tracks.class_ids.tolist(),
                tracks.scores.tolist(),
                keys,
                strict=True,
            ):
                color = _rgba(color_for(key))
                points.append(
                    PointsAnnotation(
                        timestamp=stamp,
                        type=PointsAnnotationType.LineLoop,
                        points=[Point2(x=x1, y=y1), Point2(x=x2, y=y1), Point2(x=x2, y=y2), Point2(x=x1, y=y2)],
                        outline_color=color,
                        thickness=2.0,
                    )
                )
                name = self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)
                label = f"#{track_id} {name} {score:.2f}" if track_id >= 0 else f"{name} {score:.2f}"
                texts.append(
                    TextAnnotation(
                        timestamp=stamp,
                        position=Point2(x=x1, y=max(0.0, y1 - 4.0)),
                        text=label,
                        font_size=12.0,
                        text_color=_rgba((255, 255, 255)),
                        background_color=color,
                    )
                )
        return ImageAnnotations(points=points, texts=texts)

    def _send_stats(self) -> None:
        if self.health is None:
            return
        now = time.time_ns()
        statuses = []
        several = len(self.cameras) > 1
        for camera, channels in self.cameras.items():
            report = self.health.report(camera if several else None)
            if channels.stats.has_sinks():
                channels.stats.log(stats_message(report, channels.camera_id, now))
            statuses.append(
                _status(report, f"edge_vision: {self.name}" + (f" {camera}" if camera else ""), channels.camera_id)
            )
        if self._diagnostics.has_sinks():
            from edge_vision.bag.types import typestore

            store = typestore()
            header = store.types["std_msgs/msg/Header"](
                stamp=store.types["builtin_interfaces/msg/Time"](sec=now // 1_000_000_000, nanosec=now % 1_000_000_000),
                frame_id="",
            )
            array = store.types[DIAGNOSTICS_TYPE](header=header, status=statuses)
            self._diagnostics.log(bytes(store.serialize_cdr(array, DIAGNOSTICS_TYPE)))


def _status(report: Report, name: str, hardware_id: str) -> Any:
    """The figures ``/diagnostics`` carries on ROS too (ros.conversions.report_to_status), as a rosbags message."""
    from edge_vision.bag.types import typestore

    store = typestore()
    values = {
        "fps": f"{report.fps:.2f}",
        "pipeline_latency_ms": f"{report.latency_ms:.2f}",
        "pipeline_latency_p99_ms": f"{report.latency_p99_ms:.2f}",
        "frames_decoded": str(report.frames_decoded),
        "frames_processed": str(report.frames_processed),
        "frames_dropped": str(report.frames_dropped),
        "errors": str(report.errors),
    }
    for stage in report.stages:
        values[f"{stage.name}_p50_ms"] = f"{stage.p50_ms:.2f}"
        values[f"{stage.name}_p99_ms"] = f"{stage.p99_ms:.2f}"
    key_value = store.types["diagnostic_msgs/msg/KeyValue"]
    return store.types["diagnostic_msgs/msg/DiagnosticStatus"](
        level=report.level,
        name=name,
        message=report.message,
        hardware_id=hardware_id,
        values=[key_value(key=k, value=v) for k, v in values.items()],
    )


def attach_view(pipeline: Any, values: Mapping[str, Any]) -> FoxgloveView | None:
    """The view a core ``Pipeline`` serves when ``pipeline.foxglove`` is set (its server starts now, so a client
    can connect before the first frame), else None."""
    if not values.get("foxglove"):
        return None
    view = FoxgloveView(FoxgloveOptions.from_pipeline(values))
    try:
        view.attach(pipeline)
    except BaseException:
        view.close()
        raise
    log.info("foxglove: serving %s", view.url)
    return view
