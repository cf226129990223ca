"""The supervised network-stream source against real servers on 127.0.0.1: GStreamer's RTSP server (Debian's
python3-gi, started by these tests from ``rtsp_server.py``) and an HTTP MJPEG server, both serving clips made
from data/vtest.avi. Servers are killed, frozen and brought back; the source must report it, reconnect by
itself, leave no thread or file descriptor behind, and never disturb another camera.

Timeouts and backoffs are short (``FAST``) so the whole file runs in about a minute."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from edge_vision.core import config, plugins
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.interfaces import Source
from edge_vision.core.runtime import Pipeline
from edge_vision.core.runtime.health import ERROR, OK, WARN
from edge_vision.core.sources import hwaccel
from edge_vision.core.sources.live import Backoff, StreamClock
from edge_vision.core.sources.packet_ring import EncodedPacket, PacketRing, StreamParams, write_clip
from edge_vision.core.sources.stream import StreamSource, redact
from rtsp_server import ServerProcess, free_port, make_h264_units, make_hls, make_jpeg_units

# Short enough for tests, long enough for a loaded 2-core machine: the server pushes 30 fps, so a second
# without a frame is an outage.
FAST: dict[str, Any] = {
    "open_timeout_s": 1.0,
    "stall_timeout_s": 1.5,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 0.5,
    "backoff_jitter": 0.2,
}


@pytest.fixture(scope="module")
def h264_units(video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 150 frames at 30 fps (a 5 s loop), a keyframe every 15 (0.5 s), 768x576 as in the sample.
    return make_h264_units(video, tmp_path_factory.mktemp("clips") / "vtest.h264units", frames=150, gop=15)


@pytest.fixture(scope="module")
def jpeg_units(video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_jpeg_units(video, tmp_path_factory.mktemp("clips") / "vtest.jpegunits", frames=30)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def capture_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ev-")]


@pytest.fixture()
def no_leaks() -> Iterator[None]:
    """The test must leave no capture / graph thread and no file descriptor behind."""
    fds = open_fds()
    yield
    deadline = time.monotonic() + 2.0
    while (capture_threads() or open_fds() - fds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert capture_threads() == []
    leaked = {
        fd: os.readlink(f"/proc/self/fd/{fd}") for fd in open_fds() - fds if os.path.exists(f"/proc/self/fd/{fd}")
    }
    # ONNX Runtime keeps a process-wide cache database open once a session was made: not a source's.
    assert {fd: path for fd, path in leaked.items() if ".onnxruntime" not in path} == {}


@pytest.fixture()
def servers(no_leaks: None) -> Iterator[Callable[..., ServerProcess]]:
    """Servers for one test, killed at its end (before ``no_leaks`` looks for what the source left behind)."""
    made: list[ServerProcess] = []

    def start(mode: str, units: Path, **kwargs: Any) -> ServerProcess:
        server = ServerProcess(mode, units, **kwargs)
        made.append(server)
        return server.start()

    yield start
    for server in made:
        server.kill()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds it took for ``predicate`` to hold; fails naming ``what`` after ``timeout``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


def sections(camera: dict[str, Any], cameras: list[str] | None = None) -> dict[str, dict[str, Any]]:
    raw: dict[str, Any] = {"camera": {"source": "stream", **camera}}
    if cameras:
        raw["pipeline"] = {"cameras": cameras}
    return config.resolve_all(raw)


def stream(uri: str, camera_id: str = "camera", **params: Any) -> StreamSource:
    values = {"uri": uri, **FAST, **params}
    source: StreamSource = plugins.build("sources", "stream", values, where="camera", camera_id=camera_id)
    return source


def take(source: StreamSource, count: int, timeout: float = 10.0) -> list[Any]:
    frames = []
    deadline = time.monotonic() + timeout
    for frame in source.frames():
        frames.append((frame, time.time_ns()))
        if len(frames) >= count:
            break
        assert time.monotonic() < deadline, f"only {len(frames)} frames in {timeout} s"
    return frames


# -- a stream that works ------------------------------------------------------------------------------------


def test_rtsp_frames_arrive_stamped_on_the_stream_clock(
    servers: Any, h264_units: Path, no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    server = servers("rtsp", h264_units)
    caplog.set_level(logging.WARNING)
    with stream(server.url.replace("rtsp://", "rtsp://viewer:s3cret@"), camera_id="cam0") as source:
        assert isinstance(source, Source)
        t0 = time.monotonic()
        frames = take(source, 90)
        elapsed = time.monotonic() - t0
        status = source.status()
    images = [f.image for f, _ in frames]
    assert images[0].shape == (576, 768, 3) and images[0].mean() > 50  # real pixels
    assert source.width == 768 and source.height == 576 and source.fps == pytest.approx(30, abs=1)
    assert all(f.camera_id == "cam0" for f, _ in frames)
    stamps = [f.stamp_ns for f, _ in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps)), "stamps must increase"
    assert all(f.stamp_ns <= seen for f, seen in frames), "a live frame was stamped in the future"
    # Stream clock: 90 frames 1/30 s apart (the server's pace), not the jitter of arrival.
    assert (stamps[-1] - stamps[0]) / 89 / 1e6 == pytest.approx(33.3, abs=3)
    assert elapsed < 6  # first frame fast, then 30 fps
    assert status.state == "streaming" and status.fps == pytest.approx(30, abs=4)
    assert status.decoder == "h264 software, 1 thread"
    # hwaccel auto on a machine without hardware decoders: software, said once, and why.
    fallbacks = [r.getMessage() for r in caplog.records if "hwaccel auto" in r.getMessage()]
    assert len(fallbacks) == 1 and "decoding in software" in fallbacks[0] and "nvdec" in fallbacks[0]
    assert "s3cret" not in caplog.text and "s3cret" not in status.message and "viewer:***@" in status.message
    assert source.status().state == "closed"


def test_rtsp_over_udp(servers: Any, h264_units: Path, no_leaks: None) -> None:
    server = servers("rtsp", h264_units)
    with stream(server.url, transport="udp") as source:
        frames = take(source, 30)
    assert len(frames) == 30 and source.options["rtsp_transport"] == "udp"


def test_http_mjpeg_stream_is_stamped_on_arrival(
    servers: Any, jpeg_units: Path, no_leaks: None, tmp_path: Path
) -> None:
    server = servers("mjpeg", jpeg_units, fps=15)
    with stream(server.url, camera_id="web") as source:
        frames = take(source, 30)
        clip = source.preroll()
        status = source.status()
    assert frames[0][0].image.shape == (288, 384, 3)
    stamps = [f.stamp_ns for f, _ in frames]
    # The multipart stream has no clock of its own (FFmpeg numbers its frames at 25 fps): arrival time it is.
    assert (stamps[-1] - stamps[0]) / 29 / 1e6 == pytest.approx(66.7, abs=10)
    assert status.decoder.startswith("mjpeg software")
    assert clip is not None and clip.params.codec == "mjpeg" and clip.packets[0].keyframe
    written = write_clip(clip, tmp_path / "preroll.avi")
    with av.open(str(tmp_path / "preroll.avi")) as container:
        assert sum(1 for _ in container.decode(video=0)) == written == len(clip.packets)


def test_hls_playlist_over_http(servers: Any, video: Path, tmp_path: Path, no_leaks: None) -> None:
    playlist = make_hls(video, tmp_path / "hls", frames=90)
    server = servers("files", tmp_path / "hls")
    with stream(server.file_url(playlist.name), camera_id="hls") as source:
        assert source.options["live_start_index"] == "-1"  # a live playlist would start at its newest segment
        frames: list[Any] = []
        consumer = threading.Thread(
            target=lambda: frames.extend((f, time.time_ns()) for f in source.frames()), name="test-consumer"
        )
        consumer.start()
        # A finished (VOD) playlist ends like a stream that drops: it is opened again.
        wait_for("the playlist to be read again", lambda: source.reconnects >= 1 and len(frames) >= 10, 10)
        source.interrupt()
        consumer.join(2)
    assert frames[0][0].image.shape == (288, 384, 3)
    assert source.decoder == "h264 software, 1 thread"
    assert all(f.stamp_ns <= seen for f, seen in frames)


# -- outages ------------------------------------------------------------------------------------------------


def test_server_killed_mid_stream_and_back_10s_later(servers: Any, h264_units: Path, no_leaks: None) -> None:
    from edge_vision.ros.conversions import report_to_status

    server = servers("rtsp", h264_units)
    url = server.url.replace("rtsp://", "rtsp://admin:hunter2@")
    pipeline = Pipeline(sections({"uri": url, **FAST}), stages=("source",))
    health = pipeline.health
    pipeline.start()
    try:

        def source() -> Any:
            return health.report().sources[0]

        wait_for("streaming", lambda: source().state == "streaming" and health.report().frames_processed >= 30, 10)
        server.kill()
        killed = time.monotonic()
        wait_for("the outage to show", lambda: source().state in ("stalled", "reconnecting"), 3)
        seen = set()
        while time.monotonic() - killed < 10:
            report = health.report()
            seen.add(report.sources[0].state)
            assert report.level == WARN and "admin:***@" in report.message and "hunter2" not in report.message
            assert pipeline.graph.alive_threads(), "the source thread must keep waiting out the outage"
            time.sleep(0.2)
        assert seen <= {"stalled", "reconnecting"} and "reconnecting" in seen
        report = health.report()
        assert "connection refused" in report.sources[0].message  # the server is gone, not slow
        diagnostics = {kv.key: kv.value for kv in report_to_status(report, "edge_vision", "camera").values}
        assert diagnostics["source_camera_state"] == "reconnecting"
        assert float(diagnostics["source_camera_frame_age_ms"]) > 9000  # the newest frame is from before the kill
        assert "hunter2" not in str(diagnostics)
        processed = report.frames_processed

        server.start()  # same port
        back = time.monotonic()
        wait_for("frames again", lambda: health.report().frames_processed >= processed + 30, 5)
        status = source()
        assert status.state == "streaming" and status.reconnects == 1
        # First frame again within one backoff step (0.5 s max here) plus connection set-up.
        assert getattr(pipeline.cameras[""].source, "last_reconnect_s", 0) - 10 < 2.0
        assert time.monotonic() - back < 2.5
        assert health.report().level in (OK, WARN) and not health.source_failed()
    finally:
        assert pipeline.close(), "graph threads did not end"
    assert pipeline.graph.alive_threads() == []


def test_unreachable_at_start_keeps_retrying_then_streams(servers: Any, h264_units: Path, no_leaks: None) -> None:
    port = free_port()  # nothing listens yet
    source = stream(f"rtsp://127.0.0.1:{port}/cam")
    frames: list[Any] = []
    reader = threading.Thread(target=lambda: frames.extend(source.frames()), name="test-consumer")
    reader.start()
    try:
        wait_for("retries", lambda: source.attempts >= 4, 5)
        status = source.status()
        assert status.state == "reconnecting" and "connection refused" in status.message
        assert status.frame_age_ms == -1 and not frames
        server = servers("rtsp", h264_units, port=port)
        wait_for("frames once the server is up", lambda: len(frames) >= 10, 5)
        assert source.status().state == "streaming" and source.reconnects == 0  # never streamed before
        server.kill()
        wait_for("the loss", lambda: source.status().state == "reconnecting", 3)
        t0 = time.monotonic()
        source.interrupt()  # what Graph.stop does: frames() returns at once, even in an outage
        reader.join(2)
        assert not reader.is_alive() and time.monotonic() - t0 < 1.0
    finally:
        t0 = time.monotonic()
        source.close()
        assert time.monotonic() - t0 < FAST["open_timeout_s"] + 1


def test_frozen_server_is_a_stall_then_a_reconnect(servers: Any, h264_units: Path, no_leaks: None) -> None:
    server = servers("rtsp", h264_units)
    with stream(server.url) as source:
        frames: list[Any] = []
        reader = threading.Thread(target=lambda: frames.extend(source.frames()), name="test-consumer")
        reader.start()
        wait_for("frames", lambda: len(frames) >= 15, 10)
        server.freeze()  # SIGSTOP: the TCP connection stays open, nothing comes
        frozen = time.monotonic()
        seen_stalled = wait_for("stalled", lambda: source.status().state == "stalled", 2)
        assert seen_stalled < 1.0  # shown within 3 frame periods / 0.5 s, well before the reconnect
        assert "no frame for" in source.status().message
        wait_for("the reconnect attempts", lambda: source.status().state == "reconnecting", 4)
        assert time.monotonic() - frozen >= FAST["stall_timeout_s"] * 0.9  # not before the stall timeout
        wait_for("an attempt to time out", lambda: "no answer within 1.0 s" in source.status().message, 5)
        count = len(frames)
        server.thaw()
        wait_for("frames again", lambda: len(frames) >= count + 15, 6)
        assert source.status().state == "streaming" and source.reconnects == 1
        source.interrupt()
        reader.join(2)
        assert not reader.is_alive()


def test_give_up_policy_fails_the_camera_with_a_clear_error(no_leaks: None) -> None:
    source = stream(f"rtsp://op:pa55@127.0.0.1:{free_port()}/cam", max_attempts=3)
    with pytest.raises(SourceError) as raised, source:
        list(source.frames())
    message = str(raised.value)
    assert message.startswith("camera: gave up on rtsp://op:***@127.0.0.1:")
    assert "after 3 failed attempts in a row" in message and "connection refused" in message
    assert "pa55" not in message and source.status().state == "failed"

    source = stream(f"rtsp://127.0.0.1:{free_port()}/cam", give_up_after_s=0.5)
    with pytest.raises(SourceError, match=r"gave up .* no frame for 0\.\d s"), source:
        list(source.frames())


# -- two cameras in one process -----------------------------------------------------------------------------


def test_two_cameras_one_failing_the_other_at_full_rate(servers: Any, h264_units: Path, no_leaks: None) -> None:
    good = servers("rtsp", h264_units)
    dead = f"rtsp://127.0.0.1:{free_port()}/cam"
    config_sections = sections(
        {"uri": good.url, **FAST, "front": {"camera_id": "front"}, "back": {"uri": dead, "max_attempts": 4}},
        cameras=["front", "back"],
    )
    pipeline = Pipeline(config_sections, stages=("source", "detect", "track"))  # the real shared detector
    health = pipeline.health
    pipeline.start()
    try:
        wait_for("the back camera to fail", lambda: bool(health.source_failed("back")), 10)
        wait_for("front frames", lambda: health.report("front").frames_processed >= 20, 15)
        time.sleep(2.0)  # a window of steady state with one camera dead
        front, back = health.report("front"), health.report("back")
        assert back.level == ERROR and "back failed" in back.message and "gave up" in back.message
        assert front.sources[0].state == "streaming" and front.level != ERROR
        # Capture at the server's full rate whatever the detector makes of it (newest frame, drops counted).
        assert front.sources[0].fps >= 27
        assert front.fps > 5 and front.sources[0].reconnects == 0
        assert not pipeline.succeeded and "back" in pipeline.failure()
    finally:
        assert pipeline.close()


# -- decoding -----------------------------------------------------------------------------------------------


class FlakyDevice:
    """Stands in for a hardware decoder (this machine has none): FFmpeg's own decoder, reporting itself as a
    device, that fails after ``after`` packets the way a lost GPU does."""

    is_hwaccel = True

    def __init__(self, stream_context: Any, after: int) -> None:
        self.inner: Any = av.CodecContext.create(stream_context.codec.name, "r")
        self.inner.extradata = stream_context.extradata
        self.after = after
        self.packets = self.frames = 0

    def decode(self, packet: Any) -> list[Any]:
        self.packets += 1
        if self.packets > self.after:
            raise av.error.ExternalError(errno.EIO, "device lost")
        frames = list(self.inner.decode(packet))
        self.frames += len(frames)
        return frames


def test_hardware_failure_mid_stream_continues_in_software_without_a_gap(
    servers: Any, h264_units: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, no_leaks: None
) -> None:
    devices: list[FlakyDevice] = []

    def open_flaky(kind: str, context: Any, device: str = "") -> FlakyDevice:
        devices.append(FlakyDevice(context, after=40))  # mid-GOP: 40 = 2 GOPs of 15 + 10
        return devices[-1]

    monkeypatch.setattr(hwaccel, "missing", lambda kind, codec, device="": None)
    monkeypatch.setattr(hwaccel, "open_hardware", open_flaky)
    caplog.set_level(logging.WARNING)
    server = servers("rtsp", h264_units)
    with stream(server.url, hwaccel="nvdec") as source:
        labels = []
        sequences = []
        for frame in source.frames():
            labels.append(source.status().decoder)
            sequences.append(frame.sequence)
            if len(sequences) >= 75:
                break
    assert labels[0] == "h264 nvdec" and labels[-1] == "h264 software, 1 thread"
    assert source.reconnects == 0 and source.decode_errors == 0
    # Primed with the GOP so far, the software decoder delivers the very packet the device failed on: every
    # packet from the first keyframe on made a frame (the ones before it make none, with any decoder).
    device = devices[0]
    before_first_keyframe = device.after - device.frames
    assert device.frames > 20 and source.frames_decoded == source.packets_read - before_first_keyframe
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))) or source.frames_dropped
    said = [r.getMessage() for r in caplog.records if "hardware decoding (nvdec) failed mid-stream" in r.getMessage()]
    assert len(said) == 1 and f"after {device.frames} frames: ExternalError" in said[0]


def test_auto_picks_software_here_and_explains(h264_units: Path) -> None:
    reasons = {kind: hwaccel.missing(kind, "h264") for kind in hwaccel.AUTO_ORDER}
    assert all(reasons.values()), f"this machine was expected to have no hardware decoder: {reasons}"
    assert "/dev/nvidiactl" in str(reasons["nvdec"])


# -- frame-rate management and latency ----------------------------------------------------------------------


def test_every_nth_max_fps_and_a_slow_consumer(servers: Any, h264_units: Path, no_leaks: None) -> None:
    server = servers("rtsp", h264_units)
    with stream(server.url, every_nth=3) as source:
        sequences = [f.sequence for f, _ in take(source, 10)]
    assert all(s % 3 == 0 for s in sequences) and source.frames_skipped >= 18

    with stream(server.url, max_fps=10.0) as source:
        frames = take(source, 21)
    gaps = [(b.stamp_ns - a.stamp_ns) / 1e6 for (a, _), (b, _) in itertools.pairwise(frames)]
    assert sum(gaps) / len(gaps) == pytest.approx(100, abs=8)  # 10 fps by stream time
    assert source.frames_skipped >= 35

    # A consumer at ~7 fps on a 30 fps camera: it always gets a fresh frame, never a queue of old ones.
    with stream(server.url) as source:
        ages = []
        for frame in source.frames():
            ages.append((time.time_ns() - frame.stamp_ns) / 1e6)
            time.sleep(0.15)
            if len(ages) >= 12:
                break
        assert source.frames_dropped >= 40
    assert max(ages[2:]) < 100, ages  # newest frame: under 3 frame periods old when taken


def test_stream_clock_never_stamps_the_future() -> None:
    clock = StreamClock()
    arrival = 1_000_000_000_000
    # Arrival jitter of up to 20 ms on a 30 fps media clock.
    stamps = []
    for i in range(100):
        arrival_i = arrival + i * 33_333_333 + (i * 7919 % 20) * 1_000_000
        stamps.append((clock.stamp(i * 33_333_333, arrival_i), arrival_i))
    assert all(s <= a for s, a in stamps)
    deltas = [(b[0] - a[0]) / 1e6 for a, b in itertools.pairwise(stamps)]
    assert max(abs(d - 33.33) for d in deltas) < 0.2  # the media clock's pace, not the 20 ms of jitter
    # A sender wall clock that agrees with ours is used as it is (capture time); one 10 s off is not.
    sender = StreamClock()
    assert sender.stamp(0, arrival, sender_base_ns=arrival - 40_000_000) == arrival - 40_000_000
    assert sender.sender_clock_used
    wrong = StreamClock()
    assert wrong.stamp(0, arrival, sender_base_ns=arrival + 10_000_000_000) == arrival
    assert wrong.sender_clock_rejected
    # A pts reset (new connection / discontinuity) re-anchors; stamps still only go forward.
    clock.reset()
    later = arrival + 200 * 33_333_333
    assert stamps[-1][0] < clock.stamp(0, later) <= later
    assert clock.stamp(None, later + 5) == later + 5  # no pts: arrival


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    import random

    backoff = Backoff(0.5, 4.0, 0.2, random.Random(7))
    delays = [backoff.next() for _ in range(6)]
    for delay, base in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert len({round(d, 6) for d in delays[3:]}) == 3  # jittered: cameras do not retry in step
    backoff.reset()
    assert backoff.next() <= 0.6


# -- pre-roll packets ---------------------------------------------------------------------------------------


def test_preroll_ring_holds_whole_gops_and_writes_without_reencoding(
    servers: Any, h264_units: Path, tmp_path: Path, no_leaks: None
) -> None:
    server = servers("rtsp", h264_units)
    with stream(server.url, preroll_s=1.0) as source:
        take(source, 75)  # 2.5 s
        clip = source.preroll()
    assert clip is not None and clip.packets[0].keyframe and clip.params.codec == "h264"
    # At least the 1 s asked for, at most one GOP (0.5 s) more.
    assert 0.95 <= clip.duration_s <= 1.5 + 0.2
    path = tmp_path / "preroll.ts"
    assert write_clip(clip, path) == len(clip.packets)
    with av.open(str(path)) as container:
        stream_ = container.streams.video[0]
        assert stream_.codec_context.name == "h264"
        decoded = list(container.decode(stream_))
    assert len(decoded) == len(clip.packets) and decoded[0].width == 768


def test_packet_ring_bounds() -> None:
    ring = PacketRing(seconds=1.0, max_bytes=10_000)
    ring.reset(StreamParams("h264", 64, 48, __import__("fractions").Fraction(1, 90_000), 30.0))
    ring.add(EncodedPacket(b"x" * 10, 0, 0, False, 0))  # before any keyframe: useless, not kept
    assert ring.snapshot() is None
    for i in range(100):  # 10 packets per "second", a keyframe every 5
        ring.add(EncodedPacket(b"y" * 50, i, i, i % 5 == 0, i * 100_000_000))
    clip = ring.snapshot()
    assert clip is not None and clip.packets[0].keyframe
    assert 1.0 <= clip.duration_s <= 1.5 and [p.pts for p in ring.current_gop()] == [95, 96, 97, 98, 99]
    ring.add(EncodedPacket(b"z" * 20_000, 100, 100, True, 100 * 100_000_000))  # one GOP over the limit
    assert ring.nbytes <= 10_000
    zero = PacketRing(seconds=0.0)
    zero.reset(ring.params)
    for i in range(12):
        zero.add(EncodedPacket(b"p", i, i, i % 5 == 0, i))
    assert [p.pts for p in zero.current_gop()] == [10, 11] and len(zero.snapshot().packets) == 2  # type: ignore[union-attr]


# -- configuration ------------------------------------------------------------------------------------------


def test_configuration_errors_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"camera\.uri is required"):
        plugins.build("sources", "stream", {}, where="camera")
    with pytest.raises(ConfigError, match=r"camera\.uri 'rtsp://u:\*\*\*@h/x' is not|camera\.uri '/tmp/x.mp4' is not"):
        plugins.build("sources", "stream", {"uri": "/tmp/x.mp4"}, where="camera")
    with pytest.raises(ConfigError, match=r"camera\.transport must be one of"):
        plugins.build("sources", "stream", {"uri": "rtsp://h/x", "transport": "smoke"}, where="camera")
    with pytest.raises(ConfigError, match=r"camera\.backoff_max_s must be >= backoff_initial_s"):
        plugins.build(
            "sources", "stream", {"uri": "rtsp://h/x", "backoff_initial_s": 5.0, "backoff_max_s": 1.0}, where="camera"
        )
    with pytest.raises(ConfigError, match=r"camera\.back\.stall_timeout_s must be >= 0.1"):
        sections({"uri": "rtsp://h/x", "back": {"stall_timeout_s": 0.0}}, cameras=["front", "back"])
    assert (
        redact("rtsp://admin:p%40ss@cam.local:554/s?token=abc&ch=1")
        == "rtsp://admin:***@cam.local:554/s?token=***&ch=1"
    )
    assert redact("http://cam/x.mjpg") == "http://cam/x.mjpg"


def test_calibration_is_exposed_as_camera_info(tmp_path: Path) -> None:
    calibration = tmp_path / "cam.yaml"
    calibration.write_text(
        "image_width: 768\nimage_height: 576\ncamera_name: front\n"
        "camera_matrix: {rows: 3, cols: 3, data: [500.0, 0.0, 384.0, 0.0, 500.0, 288.0, 0.0, 0.0, 1.0]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [-0.1, 0.01, 0.0, 0.0, 0.0]}\n"
        "rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n"
        "projection_matrix: {rows: 3, cols: 4, data: [500, 0, 384, 0, 0, 500, 288, 0, 0, 0, 1, 0]}\n"
    )
    source = stream("rtsp://127.0.0.1:9/cam", calibration_file=str(calibration))
    info = source.camera_info
    assert info is not None and (info.width, info.height, info.camera_name) == (768, 576, "front")
    assert info.k[0] == 500.0 and info.d[0] == -0.1 and len(info.p) == 12
    inline = stream("rtsp://127.0.0.1:9/cam", camera_matrix=[400.0, 0, 320, 0, 400, 240, 0, 0, 1])
    assert inline.camera_info is not None and inline.camera_info.d == (0.0,) * 5
    assert stream("rtsp://127.0.0.1:9/cam").camera_info is None
    with pytest.raises(ConfigError, match=r"camera\.camera_matrix must hold 9 numbers"):
        stream("rtsp://127.0.0.1:9/cam", camera_matrix=[1.0, 2.0])
    with pytest.raises(ConfigError, match=r"camera\.calibration_file: calibration file not found"):
        stream("rtsp://127.0.0.1:9/cam", calibration_file=str(tmp_path / "missing.yaml"))


def test_camera_node_publishes_camera_info_beside_each_image(jpeg_units: Path) -> None:
    """A calibrated live camera as a ROS node: sensor_msgs/CameraInfo on camera_info with the header of the
    image it belongs to. (No ``no_leaks`` here: DDS keeps process-wide sockets and shared memory.)"""
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from edge_vision.ros.container import RosPipeline

    server = ServerProcess("mjpeg", jpeg_units, fps=15).start()
    matrix = [400.0, 0.0, 192.0, 0.0, 400.0, 144.0, 0.0, 0.0, 1.0]
    run_sections = sections({"uri": server.url, **FAST, "camera_matrix": matrix, "max_frames": 40})
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    listener = rclpy.create_node("test_camera_info", context=context)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    infos: list[CameraInfo] = []
    images: list[Image] = []
    listener.create_subscription(CameraInfo, "camera_info", infos.append, qos)
    listener.create_subscription(Image, "image_raw", images.append, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    ros = RosPipeline(("source",), sections=run_sections, context=context)
    try:
        wait_for("subscriptions", lambda: listener.count_publishers("camera_info") > 0, 20)
        wait_for("both matched", lambda: all(p.publisher.get_subscription_count() for p in ros.outputs.values()), 20)
        time.sleep(0.5)  # the reader side matches a moment after the writer
        assert ros.run() == 0
        wait_for("camera_info", lambda: len(infos) >= 10 and len(images) >= 10, 20)
    finally:
        ros.destroy()
        executor.shutdown()
        spinner.join(5)
        listener.destroy_node()
        rclpy.shutdown(context=context)
        server.kill()
    info = infos[0]
    assert list(info.k) == matrix and (info.width, info.height) == (384, 288)
    assert info.distortion_model == "plumb_bob"
    image_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in images}
    assert all((m.header.stamp.sec, m.header.stamp.nanosec) in image_stamps for m in infos)
