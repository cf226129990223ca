"""Video files and network streams decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from edge_vision.core import assets
from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.frame import Frame

log = logging.getLogger(__name__)

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
    ) -> None:
        uri = uri or str(assets.find(assets.DEFAULT_VIDEO))
        if every_nth < 1:
            raise ConfigError(f"source.every_nth must be >= 1, got {every_nth}")
        if rate < 0:
            raise ConfigError(f"source.rate must be >= 0, got {rate}")
        if max_frames < 0:
            raise ConfigError(f"source.max_frames must be >= 0, got {max_frames}")
        is_stream = uri.startswith(_STREAM_SCHEMES)
        if not is_stream and not Path(uri).exists():  # exists: device nodes (/dev/video0) are not files
            raise SourceError(f"video file not found: {uri}")
        self.uri = uri
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
        self.clock = clock  # ns; the ROS clock in ROS nodes (sim time), else the wall clock
        self._container: Any = None
        self._open()  # fail at construction, naming the file, rather than in the middle of a pipeline

    def _open(self) -> None:
        import av

        try:
            container = av.open(self.uri, options=self.options, timeout=10.0)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open video {self.uri}: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.uri} has no video stream")
        stream = container.streams.video[0]
        if self.decode_threads != 1:  # a single thread decodes faster without FFmpeg's threading machinery
            stream.thread_type = "AUTO"
            stream.thread_count = self.decode_threads
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.frame_count = int(stream.frames or 0)
        self.width = stream.codec_context.width
        self.height = stream.codec_context.height
        self._container = container

    def frames(self) -> Iterator[Frame]:
        import av

        yielded = 0
        index = 0  # source frame index across loops, so sequence never repeats
        # Paced per *source* frame, so every_nth > 1 at rate 1.0 still plays in real time.
        period = 1.0 / (self.fps * self.rate) if self.rate > 0 and self.fps > 0 else 0.0
        started = time.monotonic()
        # Files are stamped on their media clock (start time + frame time), so replays are reproducible
        # and the gaps left by every_nth show in the stamps; live streams are stamped on arrival.
        # The stamps of one pass lie in the past: the pass "happened" just before now, so a file decoded faster
        # than real time never stamps a frame in the future. A later pass (loop) that would, waits for it.
        duration_ns = int(self.frame_count * 1e9 / self.fps) if self.fps > 0 and self.frame_count else 0
        t0_ns = self.clock() - (duration_ns if self.rate == 0 or self.rate > 1 else 0)
        frame_period_ns = int(1e9 / self.fps) if self.fps > 0 else 33_333_333
        while self._container is not None:
            stream = self._container.streams.video[0]
            decoded_this_pass = 0
            try:
                for packet in self._container.demux(stream):
                    try:
                        decoded = packet.decode()
                    except av.error.FFmpegError as exc:
                        # A corrupt packet costs one frame, not the stream: keep what was captured.
                        self.decode_errors += 1
                        log.warning("%s: skipping undecodable packet: %s", self.uri, exc)
                        continue
                    for av_frame in decoded:
                        self.frames_decoded += 1
                        decoded_this_pass += 1
                        index += 1
                        if (index - 1) % self.every_nth:
                            self.frames_skipped += 1
                            continue
                        if period:
                            delay = started + (index - 1) * period - time.monotonic()
                            if delay > 0:
                                time.sleep(delay)
                        image = av_frame.to_ndarray(format="bgr24")
                        stamp_ns = self.clock() if self.is_stream else t0_ns + (index - 1) * frame_period_ns
                        ahead = stamp_ns - self.clock()
                        if ahead > 0 and not self.is_stream:
                            time.sleep(ahead * 1e-9)
                        yield Frame(image=image, stamp_ns=stamp_ns, camera_id=self.camera_id, sequence=index - 1)
                        yielded += 1
                        if self.max_frames and yielded >= self.max_frames:
                            return
            except av.error.FFmpegError as exc:
                raise SourceError(f"error reading {self.uri} after {self.frames_decoded} frames: {exc}") from exc
            if not self.loop or decoded_this_pass == 0:
                if decoded_this_pass == 0 and index == 0:
                    raise SourceError(f"{self.uri}: no frame could be decoded")
                return
            self._container.seek(0)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
