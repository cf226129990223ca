"""``VideoWriter``: bgr8 images -> an MP4 file, encoded with PyAV (FFmpeg), replaced at ``close``."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.actions.atomic import fsync_path, publish, temp_path
from edge_vision.core.errors import ConfigError

__all__ = ["FALLBACK_CODEC", "VideoWriter", "codec_available"]

log = logging.getLogger(__name__)

FALLBACK_CODEC = "mpeg4"  # FFmpeg's built-in encoder: present in every PyAV build, unlike libx264 (GPL)


def codec_available(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError depending on the version
        return False
    return True


class VideoWriter:
    """Writes bgr8 images to ``path`` as MP4; the file is opened on the first ``write`` (its size sets the
    video size), so a run that produces no frame leaves no file.

    The video is written to a hidden temp file beside ``path`` (``atomic.temp_path``) and renamed over it by
    ``close``: until then a previous video at ``path`` is untouched, and a run that fails (``abort``, an
    encoder error, an exception out of a ``with`` block) leaves it so and deletes its own unfinished file.

    fps: frame rate stamped on the stream (frames are timed 1/fps apart, whatever the wall clock did): pass
        the rate of the frames actually written (source fps / every_nth), or the video plays too fast.
    codec: FFmpeg encoder; when this build lacks it, ``mpeg4`` is used instead (``self.codec`` says which).
    crf: quality for x264 (lower = better, 23 is x264's default); preset: x264 speed/size trade-off.
    bitrate: bits per second for encoders without CRF (mpeg4); 0 = about 0.15 bits per pixel per frame.
    Odd widths/heights are padded by one edge pixel: 4:2:0 video needs even dimensions.
    """

    def __init__(
        self,
        path: str,
        fps: float,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "veryfast",
        bitrate: int = 0,
    ) -> None:
        if not str(path):
            raise ConfigError("video writer: path must be a non-empty file path, got ''")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ConfigError(f"video writer {str(path)!r}: fps must be a number > 0, got {fps!r}")
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ConfigError(f"video writer {str(path)!r}: crf must be an integer in [0, 51], got {crf!r}")
        if isinstance(bitrate, bool) or not isinstance(bitrate, int) or bitrate < 0:
            raise ConfigError(f"video writer {str(path)!r}: bitrate must be an integer >= 0, got {bitrate!r}")
        if not codec_available(codec):
            if not codec_available(FALLBACK_CODEC):
                raise ConfigError(
                    f"video writer {str(path)!r}: neither codec {codec!r} nor {FALLBACK_CODEC!r} is in PyAV"
                )
            log.warning("codec %r is not available in this PyAV build; writing %s with %r", codec, path, FALLBACK_CODEC)
            codec = FALLBACK_CODEC
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"video writer {str(path)!r} is a folder, not a file")
        self.temp_path = temp_path(self.path)
        self.fps = float(fps)
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.bitrate = bitrate
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the input images, set by the first write
        self._container: Any = None
        self._stream: Any = None
        self._closed = False
        self._failed = False  # an encoder error: the temp file is not a video to publish

    def _open(self, width: int, height: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)  # 29.97 -> 2997/100, 30 -> 30
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(self.temp_path), mode="w")
        except (OSError, av.FFmpegError) as exc:
            self.temp_path.unlink(missing_ok=True)
            raise ConfigError(f"cannot open video file {str(self.path)!r} for writing: {exc}") from exc
        try:
            stream = container.add_stream(self.codec, rate=rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"  # what every player decodes
            if self.codec in ("libx264", "h264"):
                stream.options = {"crf": str(self.crf), "preset": self.preset}
            else:
                stream.bit_rate = self.bitrate or int(0.15 * stream.width * stream.height * float(rate))
        except Exception:
            container.close()
            self.temp_path.unlink(missing_ok=True)
            raise
        self._container, self._stream = container, stream
        self.size = (width, height)

    def write(self, image: NDArray[np.uint8]) -> None:
        """Encode one HxWx3 bgr8 image; every image must have the first one's size."""
        if self._closed:
            raise RuntimeError(f"video writer {str(self.path)!r} is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"video writer {str(self.path)!r}: expected HxWx3 uint8 bgr8, got {image.shape} {image.dtype}"
            )
        height, width = image.shape[:2]
        if self.size is None:
            self._open(width, height)
        elif self.size != (width, height):
            raise ValueError(
                f"video writer {str(self.path)!r}: image is {width}x{height} but the video is "
                f"{self.size[0]}x{self.size[1]} (fixed by the first frame)"
            )
        if width % 2 or height % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self.frames_written  # in 1/fps units: the stream's time base
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except Exception:
            self._failed = True
            raise
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the MP4 (without this the file has no index), fsync it, rename it over
        ``path`` and fsync the folder; safe to call twice. After an encoder error it does what ``abort`` does."""
        if self._closed:
            return
        if self._failed:
            self.abort()
            return
        self._closed = True
        if self._container is None:
            return
        try:
            try:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            finally:
                self._container.close()
            fsync_path(self.temp_path)
            publish(self.temp_path, self.path)
        except BaseException:
            self.temp_path.unlink(missing_ok=True)  # an unfinished MP4 has no index: no use to anyone
            raise

    def abort(self) -> None:
        """End a failed run: ``path`` is left as it was and the unfinished temp file is deleted."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._container.close()
        except Exception as exc:  # an encoder already in error may fail again on close; the file goes anyway
            log.debug("closing the aborted video %s: %s", self.temp_path, exc)
        finally:
            self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
