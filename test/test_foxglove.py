"""The Foxglove WebSocket view (``pipeline.foxglove``, ``edge-vision run --foxglove``), seen by a real WebSocket
client (the ``websockets`` package) speaking the Foxglove WebSocket protocol: serverInfo, advertise, subscribe,
binary MessageData. Real video, real model; ``edge-vision run`` is the real ROS pipeline (rclpy, localhost DDS).

Subprotocol: the client offers ``foxglove.websocket.v1`` and ``foxglove.sdk.v1``, as the Foxglove app does.
``foxglove-sdk`` (every release on PyPI) serves the protocol under its current name, ``foxglove.sdk.v1``, which
Foxglove documents as the same protocol as ``foxglove.websocket.v1`` (renamed); the test checks which one was
negotiated and that a client offering only the old name is refused with a clear HTTP 400 rather than misread.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import websockets

from conftest import CONFIG, cli
from edge_vision.bag.types import typestore
from edge_vision.core import config
from edge_vision.core.errors import ConfigError
from edge_vision.core.foxglove_view import FoxgloveOptions, FoxgloveView
from edge_vision.core.runtime.build import Pipeline

SUBPROTOCOLS = ["foxglove.websocket.v1", "foxglove.sdk.v1"]
TOPICS = {"/image_raw/compressed", "/annotations", "/tracks", "/events", "/stats", "/diagnostics"}
FRAMES = 40


@dataclass
class Received:
    subprotocol: str | None = None
    server_info: dict[str, Any] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, list[bytes]] = field(default_factory=dict)
    subscribed: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def json(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.messages.get(topic, [])]


class Client:
    """A Foxglove WebSocket client on its own thread: subscribes to every advertised channel, keeps every
    message by topic, until the server closes the connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.got = Received()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        try:
            async with websockets.connect(self.url, subprotocols=SUBPROTOCOLS, max_size=None) as ws:  # type: ignore[arg-type]
                self.got.subprotocol = ws.subprotocol
                async for frame in ws:
                    if isinstance(frame, str):
                        await self._control(ws, json.loads(frame))
                    else:
                        self._data(frame)
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:
            self.got.error = exc
        finally:
            self.got.closed.set()

    async def _control(self, ws: Any, message: dict[str, Any]) -> None:
        if message["op"] == "serverInfo":
            self.got.server_info = message
        elif message["op"] == "advertise":
            new = {c["id"]: c for c in message["channels"]}
            self.got.channels.update(new)
            subscriptions = [{"id": channel_id, "channelId": channel_id} for channel_id in new]
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
            if {c["topic"] for c in self.got.channels.values()} >= TOPICS:
                self.got.subscribed.set()

    def _data(self, frame: bytes) -> None:
        assert frame[0] == 0x01, f"unexpected binary opcode {frame[0]}"  # MessageData
        subscription, _log_time = struct.unpack_from("<IQ", frame, 1)
        topic = self.got.channels[subscription]["topic"]
        self.got.messages.setdefault(topic, []).append(frame[13:])

    def wait_closed(self, timeout: float) -> Received:
        assert self.got.closed.wait(timeout), "the server never closed the connection"
        self._thread.join(5)
        if self.got.error is not None:
            raise self.got.error
        return self.got


def jpeg_in(payload: bytes) -> np.ndarray:
    """The JPEG a foxglove.CompressedImage (protobuf) carries: its bytes sit verbatim in the message."""
    start = payload.find(b"\xff\xd8\xff")
    assert start >= 0, "no JPEG in the CompressedImage message"
    image = cv2.imdecode(np.frombuffer(payload[start:], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture()
def run_with_foxglove(tmp_path: Path, video: Path, model: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        cli(
            "run",
            str(CONFIG),
            "--max-frames",
            str(FRAMES),
            "--output-dir",
            str(tmp_path),
            "--foxglove",
            "0",
            "--foxglove-wait",
            "60",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    url = ""
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("foxglove: ws://"):
            url = line.split()[1]
    try:
        assert url, f"edge-vision run printed no Foxglove URL: {''.join(lines)}"
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


@pytest.mark.slow
def test_run_streams_image_annotations_tracks_and_events(
    run_with_foxglove: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    process, url = run_with_foxglove
    assert url.startswith("ws://127.0.0.1:")  # bound to localhost by default
    client = Client(url)
    got = client.wait_closed(120)  # the server closes when the run ends
    output = process.stdout.read() if process.stdout else ""
    assert process.wait(60) == 0, output

    assert got.subprotocol == "foxglove.sdk.v1"
    assert got.server_info["name"] == "edge_vision"
    topics = {c["topic"]: c for c in got.channels.values()}
    assert set(topics) == TOPICS
    assert topics["/image_raw/compressed"]["schemaName"] == "foxglove.CompressedImage"
    assert topics["/annotations"]["schemaName"] == "foxglove.ImageAnnotations"
    assert topics["/diagnostics"]["schemaName"] == "diagnostic_msgs/msg/DiagnosticArray"
    assert topics["/diagnostics"]["encoding"] == "cdr" and topics["/events"]["encoding"] == "json"

    # The client subscribed before the first frame (--foxglove-wait): tracks of every frame, in order.
    tracks = got.json("/tracks")
    assert len(tracks) == FRAMES
    stamps = [t["header"]["stamp"]["sec"] * 10**9 + t["header"]["stamp"]["nsec"] for t in tracks]
    assert stamps == sorted(stamps) and len(set(stamps)) == FRAMES
    assert any(track["id"] >= 0 and track["class_name"] == "person" for t in tracks for track in t["tracks"])

    # The event log is the run's own: the same events events.jsonl holds, in order.
    events = got.json("/events")
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines() if line.strip()]
    assert events, "the first 40 frames of vtest.avi cross the configured zone"
    assert [(e["kind"], e["rule"], e["track_id"]) for e in events] == [
        (e["kind"], e["rule"], e["track_id"]) for e in logged
    ]

    # Images (latest-wins: at least one) are the source frames; annotations carry the rules and the boxes.
    images = got.messages["/image_raw/compressed"]
    assert images and jpeg_in(images[-1]).shape == (576, 768, 3)
    annotations = got.messages["/annotations"]
    assert annotations and all(b"crossing" in a and b"right_path" in a for a in annotations)
    assert any(b"#" in a and b"person" in a for a in annotations)

    stats = got.json("/stats")
    assert stats and stats[-1]["frames_processed"] == FRAMES and stats[-1]["fps"] > 0
    diagnostics: Any = typestore().deserialize_cdr(
        got.messages["/diagnostics"][-1], "diagnostic_msgs/msg/DiagnosticArray"
    )
    status = diagnostics.status[0]
    assert status.hardware_id == "camera" and {kv.key for kv in status.values} >= {"fps", "frames_processed"}


def test_raw_images_and_a_refused_old_only_client(video: Path, model: Path) -> None:
    sections = config.load_file(CONFIG)
    sections["camera"].update(uri=str(video), max_frames=3)
    sections["visualizer"]["video_path"] = ""
    sections["events"]["actions"] = {}
    sections["pipeline"].update(foxglove=True, foxglove_port=0, foxglove_image="raw", foxglove_wait=60.0)
    pipeline = Pipeline(sections)
    assert pipeline.view is not None
    url = pipeline.view.url
    # A client offering only the old name is refused at the handshake (HTTP 400), never half-served.
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(_connect_old_only(url))
    assert refused.value.response.status_code == 400
    client = Client(url)
    assert pipeline.run(timeout=120)
    got = client.wait_closed(30)
    raw = [c for c in got.channels.values() if c["topic"] == "/image_raw"]
    assert raw and raw[0]["schemaName"] == "foxglove.RawImage"
    images = got.messages["/image_raw"]
    assert images and b"bgr8" in images[-1] and len(images[-1]) >= 768 * 576 * 3
    assert len(got.json("/tracks")) == 3


async def _connect_old_only(url: str) -> None:
    async with websockets.connect(url, subprotocols=["foxglove.websocket.v1"]):  # type: ignore[list-item]
        pass


def test_a_taken_port_is_a_config_error_naming_the_parameter() -> None:
    first = FoxgloveView(FoxgloveOptions(port=0))
    try:
        with pytest.raises(
            ConfigError, match=rf"pipeline.foxglove_port: cannot serve Foxglove on 127.0.0.1:{first.port}"
        ):
            FoxgloveView(FoxgloveOptions(port=first.port))
    finally:
        first.close()
