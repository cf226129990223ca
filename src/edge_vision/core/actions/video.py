"""``VideoWriter``: bgr8 images -> an MP4 file, encoded with PyAV (FFmpeg), replaced at ``close``;
``VideoRecorder``: the pipeline's annotated-video sink on top of it (frame rate from the stamps, time segments,
storage errors).

Crash-safe: the MP4 is *fragmented* (``movflags=empty_moov+default_base_moof``, ``frag_duration``): an empty
index up front, then one ``moof``+``mdat`` fragment per ``FRAGMENT_S`` of video, handed to the kernel as soon as
it is complete (``flush_packets``). A process killed by SIGKILL or a power cut
leaves a file that plays up to its last complete fragment; a plain MP4 writes its index (``moov``) only at
the end and is unplayable without it ("moov atom not found"). ``repair`` cuts a file after its last complete
fragment (a fragment half-written when the disk filled up or the power went).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.actions.atomic import fsync_dir, lock, publish, temp_path
from edge_vision.core.errors import ConfigError

__all__ = [
    "FALLBACK_CODEC",
    "FRAGMENT_S",
    "KEYFRAME_S",
    "VideoRecorder",
    "VideoWriter",
    "codec_available",
    "mp4_fragments",
    "repair",
]

log = logging.getLogger(__name__)

FALLBACK_CODEC = "mpeg4"  # FFmpeg's built-in encoder: present in every PyAV build, unlike libx264 (GPL)
# A fragment per second of video: what a crash loses at most, besides the encoder's look-ahead. Fragments are cut
# by duration, not at keyframes: played from the start a fragment needs no keyframe of its own, and a keyframe
# per second made the file 2.5x larger. Measured, 300 frames of vtest.avi (x264 crf 23), copy taken at frame 155:
# keyframe (and fragment) every 1 s: 4.09 MB, 140 frames play from the copy; 2 s: 2.81 MB, 140; 1 s fragments
# with a keyframe every 10 s: 1.73 MB, 140; every 25 s (x264's default): 1.62 MB, 140.
FRAGMENT_S = 1.0
KEYFRAME_S = 10.0  # seeking granularity; each segment file starts with one anyway
# fsync the file being written at most this often, so a power cut loses seconds, not the page cache's ~30 s.
# Measured on the dev VM's virtio disk: 0.3 ms median (0.5 ms max) to fsync 2 s of 768x576 video, on the
# writer's thread (never the detector's); an SD card is slower, hence not per fragment.
SYNC_S = 2.0
MP4_SUFFIXES = (".mp4", ".m4v", ".mov")
MOVFLAGS = "empty_moov+default_base_moof"


def codec_available(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError depending on the version
        return False
    return True


def _mp4_scan(path: Path) -> tuple[int, int, int]:
    """(bytes up to the end of the last complete fragment or index, complete fragments, file size) of an MP4.

    Top-level boxes are ``size(4) type(4) [largesize(8)]``; a fragment is a ``moof`` followed by its ``mdat``.
    A box that runs past the end of the file is where a writer was interrupted."""
    size = path.stat().st_size
    good = fragments = 0
    offset = 0
    moov = mdat = moof_open = False
    with path.open("rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # "to the end of the file": only a finished writer knows that
                box_size = size - offset
            if box_size < 8 or offset + box_size > size:
                break
            offset += box_size
            if kind == b"moof":
                moof_open = True
            elif kind == b"mdat":
                if moof_open:
                    fragments += 1
                    moof_open = False
                    good = offset
                mdat = True
            elif kind == b"moov":
                moov = True
                good = offset
            elif not moof_open:  # ftyp, free, mfra, sidx...: complete boxes between fragments
                good = offset
    if not moov or (not fragments and not mdat):  # no index, or an empty one and no fragment: no frame at all
        good = 0
    return good, fragments, size


def mp4_fragments(path: str | os.PathLike[str]) -> int:
    """Complete ``moof``+``mdat`` fragments in an MP4 file (0 for a plain, unfragmented MP4)."""
    return _mp4_scan(Path(path))[1]


def repair(path: str | os.PathLike[str]) -> bool:
    """Cut an interrupted MP4 after its last complete fragment; True when what is left plays. Files of other
    containers are left as they are (True when not empty)."""
    path = Path(path)
    if path.suffix.lower() not in MP4_SUFFIXES:
        return path.stat().st_size > 0
    good, _fragments, size = _mp4_scan(path)
    if 0 < good < size:
        os.truncate(path, good)
    return good > 0


class VideoWriter:
    """Writes bgr8 images to ``path`` as MP4; the file is opened on the first ``write`` (its size sets the
    video size), so a run that produces no frame leaves no file.

    The video is written to a hidden temp file beside ``path`` (``atomic.temp_path``, locked while written) and
    renamed over it by ``close``: until then a previous video at ``path`` is untouched, and a run that fails
    (``abort``, an exception out of a ``with`` block) leaves it so and deletes its own unfinished file. A
    failed write (an ``OSError`` such as ENOSPC, or an encoder error) leaves the writer ``failed``: ``close``
    then publishes what was complete before the failure (cut after its last fragment) when anything plays.

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
        self._lock_fd = -1
        self._synced = 0.0
        self._closed = False
        self.failed = False  # a write failed: what follows the last complete fragment is not a video
        self.published = False  # ``path`` holds this writer's video

    def _open(self, width: int, height: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)  # 29.97 -> 2997/100, 30 -> 30
        fragmented = self.path.suffix.lower() in MP4_SUFFIXES
        options = {"movflags": MOVFLAGS, "frag_duration": str(int(FRAGMENT_S * 1e6)), "flush_packets": "1"}
        if not fragmented:
            options = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created (and locked) here rather than by FFmpeg at its first packet: the lock marks the file as
            # being written from the start, and its name is made durable for recovery after a power cut.
            self._lock_fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            lock(self._lock_fd)
            fsync_dir(self.path.parent)
            container = av.open(str(self.temp_path), mode="w", container_options=options)
        except (OSError, av.FFmpegError) as exc:
            self._release()
            self.temp_path.unlink(missing_ok=True)
            raise ConfigError(f"cannot open video file {str(self.path)!r} for writing: {exc}") from exc
        try:
            stream = container.add_stream(self.codec, rate=rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"  # what every player decodes
            stream.codec_context.gop_size = max(1, round(self.fps * KEYFRAME_S))
            if self.codec in ("libx264", "h264"):
                stream.options = {"crf": str(self.crf), "preset": self.preset}
            else:
                stream.bit_rate = self.bitrate or int(0.15 * stream.width * stream.height * float(rate))
        except Exception:
            container.close()
            self._release()
            self.temp_path.unlink(missing_ok=True)
            raise
        self._container, self._stream = container, stream
        self.size = (width, height)
        self._synced = time.monotonic()

    def write(self, image: NDArray[np.uint8]) -> None:
        """Encode one HxWx3 bgr8 image; every image must have the first one's size."""
        if self._closed:
            raise RuntimeError(f"video writer {str(self.path)!r} is closed")
        if self.failed:
            raise RuntimeError(f"video writer {str(self.path)!r} failed earlier; close it")
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
            now = time.monotonic()
            if now - self._synced >= SYNC_S:
                self._synced = now
                os.fsync(self._lock_fd)
        except Exception:
            self.failed = True
            raise
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the MP4, fsync it, rename it over ``path`` and fsync the folder; safe to
        call twice. After a failed write it publishes what played before the failure (``salvage``)."""
        if self._closed:
            return
        if self.failed:
            self.salvage()
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
            os.fsync(self._lock_fd)
            publish(self.temp_path, self.path)
            self.published = True
        except BaseException:
            self.failed = True
            self._closed = False
            self.salvage()
            raise
        finally:
            self._release()

    def salvage(self) -> bool:
        """End a writer whose writes failed: close what can be closed, cut the file after its last complete
        fragment and publish it when something plays (else delete it). True when ``path`` got a video."""
        if self._closed:
            return False
        self._closed = True
        if self._container is None:
            return False
        try:
            self._container.close()  # writes the pending fragment where the disk still takes it
        except Exception as exc:  # a muxer in error fails again; the file is cut below
            log.debug("closing the failed video %s: %s", self.temp_path, exc)
        try:
            if repair(self.temp_path):
                publish(self.temp_path, self.path)
                self.published = True
                return True
            self.temp_path.unlink(missing_ok=True)  # not one complete fragment: nothing to keep
            return False
        except OSError as exc:  # e.g. the file system went read-only: the temp file is recovered next start
            log.error("video %s: cannot keep what was written before the failure: %s", self.temp_path, exc)
            return False
        finally:
            self._release()

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
            self._release()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _utc_name(stamp_ns: int) -> str:
    # timezone.utc, not datetime.UTC: setup.py still admits Python 3.10 (ROS 2 Humble).
    return datetime.fromtimestamp(stamp_ns / 1e9, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")  # noqa: UP017


class VideoRecorder:
    """The annotated video of one camera: ``write(stamp_ns, image)`` per frame, ``close`` at the end.

    fps: of the written video; 0 = the rate of the frames it gets, from the stamps of the first two.
    segment_s: 0 = one file at ``path``; > 0 = a new file every ``segment_s`` seconds of frame time, named
        after its first frame's UTC time (``annotated.20250101T120000Z.mp4``), each published when complete,
        so a months-long run is never one ever-growing file and a storage guard can delete the oldest.
    storage: a ``storage.StorageErrors``; a write failing for lack of space or permission is reported to it
        once (not per frame) and recording pauses: until the next segment (then retried), or for the rest of
        the run with one file. What was written before stays playable. Without it, the error is raised.
    """

    def __init__(self, path: str, *, fps: float = 0.0, segment_s: float = 0.0, storage: Any = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.segment_s = segment_s
        self.storage = storage
        self.files: list[str] = []  # published videos, in order
        self.frames_written = 0  # frames in published or open files
        self.frames_lost = 0  # frames not recorded because of storage errors
        self.writer: VideoWriter | None = None
        self._first: tuple[int, NDArray[np.uint8]] | None = None
        self._segment_start = 0
        self._paused_until: int | None = None  # stamp (ns) before which recording is off after a failure

    @property
    def patterns(self) -> tuple[str, ...]:
        """Names (glob) of this recorder's published files, for a storage guard."""
        return (self.path.name, f"{self.path.stem}.*{self.path.suffix}")

    def write(self, stamp_ns: int, image: NDArray[np.uint8]) -> None:
        if not self.fps:
            if self._first is None:
                self._first = (stamp_ns, image)
                return
            first_stamp = self._first[0]
            self.fps = 1e9 / (stamp_ns - first_stamp) if stamp_ns > first_stamp else 10.0
            first, self._first = self._first, None
            self._record(*first)
        self._record(stamp_ns, image)

    def _record(self, stamp_ns: int, image: NDArray[np.uint8]) -> None:
        segment_ns = int(self.segment_s * 1e9)
        if self.writer is not None and segment_ns and stamp_ns - self._segment_start >= segment_ns:
            self._finish()
        if self._paused_until is not None:
            if stamp_ns < self._paused_until:
                self.frames_lost += 1
                return
            self._paused_until = None
        if self.writer is None:
            self._segment_start = stamp_ns
            path = self.path
            if segment_ns:
                path = self.path.with_name(f"{self.path.stem}.{_utc_name(stamp_ns)}{self.path.suffix}")
                if path.exists() or str(path) in self.files:
                    path = path.with_name(f"{path.stem}-{len(self.files)}{path.suffix}")
            self.writer = VideoWriter(str(path), fps=self.fps or 10.0)
        writer = self.writer
        try:
            writer.write(image)
        except (OSError, av.FFmpegError, ConfigError) as exc:
            if self.storage is None or not self.storage.failed(str(writer.path), exc, "video recording paused"):
                raise
            self.frames_lost += 1
            self._finish()
            # One file: recording is over for this run. Segments: try again with the next segment.
            self._paused_until = self._segment_start + segment_ns if segment_ns else 2**63
            return
        self.frames_written += 1
        if self.storage is not None:
            self.storage.recovered(str(writer.path))

    def _finish(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        if writer.failed:
            if writer.salvage():
                self.files.append(str(writer.path))
            return
        try:
            writer.close()
        except (OSError, av.FFmpegError) as exc:
            if self.storage is None or not self.storage.failed(str(writer.path), exc, "video not finished"):
                raise
            if writer.published:
                self.files.append(str(writer.path))  # salvaged by close
            return
        if writer.published:
            self.files.append(str(writer.path))

    def close(self) -> None:
        if self._first is not None:  # a one-frame video
            first, self._first = self._first, None
            self.fps = self.fps or 10.0
            self._record(*first)
        self._finish()
