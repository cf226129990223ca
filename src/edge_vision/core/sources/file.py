"""Video files and network streams decoded with PyAV (FFmpeg).

Stamps: a file's frames are stamped on its media clock, each from its own presentation time (pts), so a
variable-frame-rate recording (phones, screen captures, cameras that drop frames) keeps its real timing; a
stamp from the frame index and the average rate put a 49.2 s VFR clip on 8 s. A frame without a pts, or with
one that does not advance, takes the previous stamp plus one nominal frame period (said once).

A file that ends before its header says it should (a recording cut off by a power loss, a copy still being
written) is a *warning*, not a failure: the frames it has are good, so the run goes on and exits 0, and the
source's ``warnings`` (which file, how far it got) reach the log, ``/diagnostics`` and summary.json.
``strict: true`` makes it an error instead (the camera fails, exit 1), for pipelines where an incomplete input
must not pass as a result. Undecodable packets are counted, skipped and warned about the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from edge_vision.core import assets, secrets
from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.frame import Frame
from edge_vision.core.secrets import redact

log = logging.getLogger(__name__)

_MP4_SUFFIXES = (".mp4", ".m4v", ".mov", ".3gp")
_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def _options(options: dict[str, str] | list[str] | None) -> dict[str, str]:
    if isinstance(options, dict):
        return {str(k): str(v) for k, v in options.items()}
    parsed: dict[str, str] = {}
    for item in options or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"options: {item!r} is not key=value")
        parsed[key.strip()] = value.strip()
    return parsed


class FileSource:
    """Decode a video file (or a URL FFmpeg can open) into BGR ``Frame``s.

    every_nth: yield only every Nth decoded frame (``sequence`` keeps the source index, so trackers know
        the gap). Skipped frames are decoded (codecs need them) but never converted to BGR.
    loop: start again at the end of a file, for demos and soak tests.
    rate: 0 decodes as fast as possible; 1.0 paces output to the stream's frame rate (a live camera).
    decode_threads: FFmpeg decoder threads; 0 lets FFmpeg choose.
    max_frames: stop after this many yielded frames (0 = no limit).
    options: FFmpeg/demuxer options as ``key=value`` strings (e.g. ``rtsp_transport=tcp``).
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("uri", "", "file path, device (/dev/video0) or stream URL; empty = the bundled sample video"),
        Param("every_nth", 1, "process every Nth decoded frame", min=1, max=1000),
        Param("loop", False, "restart the file at its end"),
        Param("rate", 0.0, "0 = as fast as possible, 1.0 = the stream's own frame rate", min=0.0, max=100.0),
        Param("decode_threads", 0, "FFmpeg decoder threads (0 = auto)", min=0, max=64),
        Param("max_frames", 0, "stop after this many frames (0 = no limit)", min=0),
        Param("options", [""], "FFmpeg options as key=value strings, e.g. rtsp_transport=tcp"),
        Param(
            "strict",
            False,
            "a file that ends early (truncated) or has undecodable packets fails the camera (exit 1) instead of "
            "a warning",
        ),
    )

    def __init__(
        self,
        uri: str,
        *,
        camera_id: str = "camera",
        clock: Callable[[], int] = time.time_ns,
        every_nth: int = 1,
        loop: bool = False,
        rate: float = 0.0,
        decode_threads: int = 0,
        max_frames: int = 0,
        options: dict[str, str] | list[str] | None = None,
        strict: bool = False,
    ) -> None:
        uri = uri or str(assets.find(assets.DEFAULT_VIDEO))
        secrets.check_references(uri, "camera.uri")
        if every_nth < 1:
            raise ConfigError(f"source.every_nth must be >= 1, got {every_nth}")
        if rate < 0:
            raise ConfigError(f"source.rate must be >= 0, got {rate}")
        if max_frames < 0:
            raise ConfigError(f"source.max_frames must be >= 0, got {max_frames}")
        is_stream = uri.startswith(_STREAM_SCHEMES)
        if not is_stream and not Path(secrets.expand(uri, "camera.uri")).exists():  # exists: devices are not files
            raise SourceError(f"video file not found: {redact(uri)}")
        self.uri = uri  # as configured (${NAME} unexpanded); messages show ``self.name``
        self.name = redact(uri)
        self.strict = strict
        self.warnings: list[str] = []  # what went wrong without stopping the source (see the module doc)
        self.is_stream = is_stream
        self.camera_id = camera_id
        self.every_nth = every_nth
        self.loop = loop and not is_stream
        self.rate = rate
        self.decode_threads = decode_threads
        self.max_frames = max_frames
        self.options = _options(options)
        self.frames_decoded = 0
        self.frames_skipped = 0
        self.decode_errors = 0
        self.fps = 0.0
        self.width = self.height = 0
        self.frame_count = 0  # frames in the file (0 = unknown, e.g. a stream)
        self.duration_s = 0.0  # the file's length by its header (0 = unknown)
        self.clock = clock  # ns; the ROS clock in ROS nodes (sim time), else the wall clock
        self._container: Any = None
        self._said: set[str] = set()
        self._open()  # fail at construction, naming the file, rather than in the middle of a pipeline

    def _open(self) -> None:
        import av

        try:
            container = av.open(secrets.expand(self.uri, "camera.uri"), options=self.options, timeout=10.0)
        except (av.error.FFmpegError, OSError) as exc:
            hint = ""
            if isinstance(exc, av.error.InvalidDataError) and Path(self.uri).suffix.lower() in _MP4_SUFFIXES:
                # An MP4 writes its index (moov) at the end: a recording cut before that cannot be read at all.
                hint = " (an MP4/MOV whose recording was cut off has no index (moov atom) and cannot be played)"
            raise SourceError(f"cannot open video {self.name}: {redact(str(exc))}{hint}") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.name} has no video stream")
        stream = container.streams.video[0]
        if self.decode_threads != 1:  # a single thread decodes faster without FFmpeg's threading machinery
            stream.thread_type = "AUTO"
            stream.thread_count = self.decode_threads
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.frame_count = int(stream.frames or 0)
        self.width = stream.codec_context.width
        self.height = stream.codec_context.height
        # The longest length any header gives: a cut AVI's stream duration counts what is left of it, while its
        # main header still says how many frames were recorded.
        self.duration_s = max(
            float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0,
            container.duration / 1e6 if container.duration else 0.0,  # in AV_TIME_BASE (microseconds)
            self.frame_count / self.fps if self.fps > 0 else 0.0,
        )
        self._container = container

    def frames(self) -> Iterator[Frame]:
        import av

        yielded = 0
        index = 0  # source frame index across loops, so sequence never repeats
        started = time.monotonic()
        # Files are stamped on their media clock (each frame's pts), so replays are reproducible and the gaps
        # left by every_nth or a variable frame rate show in the stamps; live streams are stamped on arrival.
        # The stamps of one pass lie in the past: the pass "happened" just before now, so a file decoded faster
        # than real time never stamps a frame in the future. A later pass (loop) that would, waits for it.
        frame_period_ns = int(1e9 / self.fps) if self.fps > 0 else 33_333_333
        duration_ns = int(self.duration_s * 1e9) or self.frame_count * frame_period_ns
        t0_ns = self.clock() - (duration_ns if self.rate == 0 or self.rate > 1 else 0)
        pass_start_ns = 0  # media time of this pass's first frame, on the run's media clock
        media_ns = -frame_period_ns  # media time of the latest decoded frame
        step_ns = frame_period_ns  # media time between the latest two frames (the last one lasts as long)
        while self._container is not None:
            stream = self._container.streams.video[0]
            time_base = stream.time_base or Fraction(1, 90_000)
            first_pts: int | None = None
            decoded_this_pass = 0
            try:
                for packet in self._container.demux(stream):
                    try:
                        decoded = packet.decode()
                    except av.error.FFmpegError as exc:
                        # A corrupt packet costs one frame, not the stream: keep what was captured.
                        self._decode_error(exc)
                        continue
                    for av_frame in decoded:
                        self.frames_decoded += 1
                        decoded_this_pass += 1
                        index += 1
                        pts = av_frame.pts
                        if pts is not None and first_pts is None:
                            first_pts = pts
                        if pts is not None and first_pts is not None:
                            at = pass_start_ns + int((pts - first_pts) * time_base * 1_000_000_000)
                        else:
                            at = -1
                        if at <= media_ns:  # no pts, or one that does not advance: one nominal period on
                            if decoded_this_pass > 1:
                                self._say_once(
                                    "pts",
                                    f"{self.name}: frames without increasing timestamps (first at "
                                    f"frame {index - 1}): stamped one frame period apart",
                                )
                            at = media_ns + frame_period_ns
                        if decoded_this_pass > 1:
                            step_ns = at - media_ns
                        media_ns = at
                        if (index - 1) % self.every_nth:
                            self.frames_skipped += 1
                            continue
                        if self.rate > 0:  # paced on media time, so every_nth and VFR play in real time
                            delay = started + media_ns * 1e-9 / self.rate - time.monotonic()
                            if delay > 0:
                                time.sleep(delay)
                        image = av_frame.to_ndarray(format="bgr24")
                        stamp_ns = self.clock() if self.is_stream else t0_ns + media_ns
                        ahead = stamp_ns - self.clock()
                        if ahead > 0 and not self.is_stream:
                            time.sleep(ahead * 1e-9)
                        yield Frame(image=image, stamp_ns=stamp_ns, camera_id=self.camera_id, sequence=index - 1)
                        yielded += 1
                        if self.max_frames and yielded >= self.max_frames:
                            return
            except av.error.FFmpegError as exc:
                raise SourceError(
                    f"error reading {self.name} after {self.frames_decoded} frames: {redact(str(exc))}"
                ) from exc
            if decoded_this_pass == 0 and index == 0:
                raise SourceError(f"{self.name}: no frame could be decoded")
            if not self.is_stream and decoded_this_pass:
                self._check_complete(decoded_this_pass, media_ns - pass_start_ns + step_ns, step_ns)
            if not self.loop or decoded_this_pass == 0:
                return
            pass_start_ns = media_ns + step_ns
            self._container.seek(0)

    def _check_complete(self, decoded: int, reached_ns: int, step_ns: int) -> None:
        """At the end of a pass: warn (or, strict, fail) when the file ended before its header said it would.
        By time, not by frame count: an AVI's header counts the empty chunks a variable-rate recording leaves
        for skipped frames (measured: 6000 "frames" for 60 pictures at 10 fps in a 1/1000 time base)."""
        reached_s = reached_ns / 1e9
        # A frame or two of edit-list / decoder-delay difference is normal in complete files.
        if not self.duration_s or self.duration_s - reached_s <= max(3 * step_ns / 1e9, self.duration_s / 100):
            return
        self._problem(
            "truncated",
            f"video {self.name} ends early: decoded {decoded} frames, {reached_s:.1f} s of {self.duration_s:.1f} s "
            "(the file is truncated or damaged; the frames before the cut were used)",
        )

    def _decode_error(self, exc: Exception) -> None:
        self.decode_errors += 1
        message = f"{self.name}: skipping undecodable packet: {redact(str(exc))}"
        if self.decode_errors == 1 or self.decode_errors % 100 == 0:
            log.warning("%s (%d so far)", message, self.decode_errors)
        if self.strict:
            raise SourceError(f"{message} (camera.strict)")
        plural = "s" if self.decode_errors > 1 else ""
        summary = f"{self.name}: {self.decode_errors} undecodable packet{plural} skipped"
        self.warnings = [w for w in self.warnings if "undecodable packet" not in w] + [summary]

    def _problem(self, key: str, message: str) -> None:
        if self.strict:
            raise SourceError(f"{message} (camera.strict)")
        if message not in self.warnings:
            self.warnings.append(message)
        self._say_once(key, message)

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning("%s", message)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
