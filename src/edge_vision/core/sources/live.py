"""Supervised live capture: the machinery shared by the network-stream and V4L2 sources.

Shape: one reader thread per camera opens the stream (PyAV/FFmpeg), demuxes, keeps the encoded packets in a
``PacketRing`` and decodes into a one-slot "latest" buffer; ``frames()`` (the graph's source thread) takes the
newest frame, converts it to BGR and yields it. A consumer slower than the camera never builds a backlog: the
frame it did not take is replaced and counted as ``dropped`` (and the colour conversion is never paid for it).

Supervision: a connection that fails to open, ends, errors, or delivers no frame for ``stall_timeout_s`` is
closed and made again after an exponential backoff with jitter, for ever by default (``give_up_after_s`` /
``max_attempts`` set a limit; then ``frames()`` raises and the graph marks that camera failed, no other).
The camera's state (connecting, streaming, stalled, reconnecting, failed, closed), fps, decode time, drops,
reconnects and frame age are read live through ``status()`` (the runtime's ``Health`` does, for /diagnostics
and PipelineStats).

Timestamps (``timestamps``): live frames are stamped on the wall clock (the ``clock`` context: the ROS clock
in a node), never in the future. ``stream`` maps
the stream's own clock (RTP/PTS) to wall-clock time: through the sender's RTCP wall clock where FFmpeg has it
(RTSP, once the first sender report arrived) and the two clocks agree within ``_CLOCK_TOLERANCE_NS``, else by
anchoring the media clock at the lowest arrival delay seen (``StreamClock``). ``arrival``: when decoded.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.frame import Frame
from edge_vision.core.runtime.health import SourceStatus
from edge_vision.core.secrets import redact
from edge_vision.core.sources.calibration import CALIBRATION_PARAMS, CameraInfo, calibration_from_params
from edge_vision.core.sources.hwaccel import HWACCEL_CHOICES, THREAD_TYPES, Decoder
from edge_vision.core.sources.packet_ring import EncodedPacket, PacketRing, StreamParams

log = logging.getLogger(__name__)

STATES = ("connecting", "streaming", "stalled", "reconnecting", "failed", "closed")
# Sender and receiver clocks further apart than this: the sender's wall clock is not trusted (a camera
# without NTP); its media clock is anchored on arrival instead.
_CLOCK_TOLERANCE_NS = 2_000_000_000
# The media clock anchor may rise by this much per second of media time, to follow a sender clock slower than
# ours (camera crystals are within ~100 ppm); more would let arrival jitter show in the stamps.
_DRIFT_ALLOWANCE = 2e-4
# A jump of the arrival delay beyond this is a discontinuity (pause, pts reset): re-anchor at once.
_REANCHOR_NS = 1_000_000_000

LIVE_PARAMS: tuple[Param, ...] = (
    Param("every_nth", 1, "hand on every Nth decoded frame", min=1, max=1000),
    Param("max_fps", 0.0, "hand on at most this many frames per second of stream time (0 = no cap)", min=0.0),
    Param("max_frames", 0, "stop after this many frames (0 = no limit)", min=0),
    Param(
        "timestamps",
        "auto",
        "frame stamps: stream = the stream's clock mapped to wall-clock time, arrival = when decoded, "
        "auto = stream where the stream has a clock",
        choices=("auto", "stream", "arrival"),
    ),
    Param("hwaccel", "auto", "hardware decoding; auto = what this machine has, else software", choices=HWACCEL_CHOICES),
    Param("hwaccel_device", "", "device of the hwaccel (e.g. /dev/dri/renderD129, CUDA index); empty = default"),
    Param("decode_threads", 1, "software decoder threads (0 = FFmpeg's choice)", min=0, max=64),
    Param(
        "decode_thread_type",
        "slice",
        "software decoder threading: frame threads add one frame of latency each, slice threads none",
        choices=THREAD_TYPES,
    ),
    Param("open_timeout_s", 5.0, "give up one connection attempt after this long", min=0.1, max=600.0),
    Param("stall_timeout_s", 5.0, "no frame for this long: the connection is dropped and made again", min=0.1),
    Param("backoff_initial_s", 0.5, "first delay before reconnecting (doubles per failed attempt)", min=0.0),
    Param("backoff_max_s", 10.0, "longest delay between attempts", min=0.0),
    Param("backoff_jitter", 0.2, "random +- fraction of each delay, so cameras do not retry in step", min=0.0, max=1.0),
    Param("give_up_after_s", 0.0, "fail the camera after this long without a frame (0 = never)", min=0.0),
    Param("max_attempts", 0, "fail the camera after this many failed attempts in a row (0 = never)", min=0),
    Param("preroll_s", 5.0, "seconds of encoded packets kept for pre-roll clips (whole GOPs)", min=0.0, max=600.0),
    Param("preroll_max_mb", 32, "memory bound of the pre-roll packets", min=1, max=4096),
    *CALIBRATION_PARAMS,
)


class _Stalled(Exception):
    pass


class Backoff:
    """Exponential backoff with jitter: initial, 2x initial... up to ``maximum``, each +- ``jitter``."""

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random | None = None) -> None:
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        base = min(self.maximum, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return max(0.0, base * (1.0 + self.jitter * self._rng.uniform(-1.0, 1.0)))

    def reset(self) -> None:
        self.failures = 0


class StreamClock:
    """Maps a stream's media time to wall-clock capture stamps that never lie in the future and never go
    back. ``reset`` at each new connection (media time restarts); stamps stay monotonic across resets."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self._media_at_offset = 0
        self._last = 0
        self.sender_clock_used = False
        self.sender_clock_rejected = False

    def reset(self) -> None:
        self._offset = None
        self.sender_clock_used = False

    def stamp(self, media_ns: int | None, arrival_ns: int, sender_base_ns: int | None = None) -> int:
        candidate = arrival_ns
        if media_ns is not None:
            if sender_base_ns is not None and abs(sender_base_ns + media_ns - arrival_ns) < _CLOCK_TOLERANCE_NS:
                candidate = sender_base_ns + media_ns
                self.sender_clock_used = True
            else:
                if sender_base_ns is not None:
                    self.sender_clock_rejected = True
                candidate = media_ns + self._anchor(media_ns, arrival_ns)
        # Never in the future, never before the previous frame (a switch of clock source may step back).
        stamp = min(max(candidate, self._last + 1), arrival_ns)
        self._last = stamp
        return stamp

    def _anchor(self, media_ns: int, arrival_ns: int) -> int:
        delay = arrival_ns - media_ns
        if self._offset is None or delay < self._offset or delay - self._offset > _REANCHOR_NS:
            self._offset, self._media_at_offset = delay, media_ns
        else:  # follow a sender clock slower than ours, slowly
            elapsed = max(0, media_ns - self._media_at_offset)
            self._offset = min(delay, self._offset + int(elapsed * _DRIFT_ALLOWANCE))
            self._media_at_offset = media_ns
        return self._offset


@dataclass(slots=True)
class _Latest:
    frame: Any  # av.VideoFrame
    stamp_ns: int
    sequence: int


class LiveSource:
    """Base of the supervised live sources. Subclasses open the stream (``_open``), name it (``describe``,
    passwords redacted) and explain failures (``_explain``). Construction starts nothing: the reader thread
    starts with ``frames()``, so an unreachable camera is reported (and retried), not fatal."""

    PARAMS: ClassVar[tuple[Param, ...]] = LIVE_PARAMS
    clock_formats_without_time: ClassVar[tuple[str, ...]] = ("mpjpeg", "mjpeg", "image2pipe", "jpeg_pipe")

    def __init__(
        self,
        *,
        camera_id: str = "camera",
        where: str = "camera",
        every_nth: int = 1,
        max_fps: float = 0.0,
        max_frames: int = 0,
        timestamps: str = "auto",
        hwaccel: str = "auto",
        hwaccel_device: str = "",
        decode_threads: int = 1,
        decode_thread_type: str = "slice",
        open_timeout_s: float = 5.0,
        stall_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        backoff_jitter: float = 0.2,
        give_up_after_s: float = 0.0,
        max_attempts: int = 0,
        preroll_s: float = 5.0,
        preroll_max_mb: int = 32,
        calibration_file: str = "",
        camera_matrix: list[float] | None = None,
        distortion_model: str = "plumb_bob",
        distortion: list[float] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        checks = (
            (every_nth >= 1, "every_nth", "must be >= 1", every_nth),
            (max_fps >= 0, "max_fps", "must be >= 0", max_fps),
            (max_frames >= 0, "max_frames", "must be >= 0", max_frames),
            (timestamps in ("auto", "stream", "arrival"), "timestamps", "must be auto, stream or arrival", timestamps),
            (hwaccel in HWACCEL_CHOICES, "hwaccel", f"must be one of {list(HWACCEL_CHOICES)}", hwaccel),
            (decode_thread_type in THREAD_TYPES, "decode_thread_type", "must be slice|frame|auto", decode_thread_type),
            (decode_threads >= 0, "decode_threads", "must be >= 0", decode_threads),
            (open_timeout_s > 0, "open_timeout_s", "must be > 0", open_timeout_s),
            (stall_timeout_s > 0, "stall_timeout_s", "must be > 0", stall_timeout_s),
            (backoff_initial_s >= 0, "backoff_initial_s", "must be >= 0", backoff_initial_s),
            (backoff_max_s >= backoff_initial_s, "backoff_max_s", "must be >= backoff_initial_s", backoff_max_s),
            (0 <= backoff_jitter <= 1, "backoff_jitter", "must be within [0, 1]", backoff_jitter),
            (give_up_after_s >= 0, "give_up_after_s", "must be >= 0", give_up_after_s),
            (max_attempts >= 0, "max_attempts", "must be >= 0", max_attempts),
            (preroll_s >= 0, "preroll_s", "must be >= 0", preroll_s),
            (preroll_max_mb >= 1, "preroll_max_mb", "must be >= 1", preroll_max_mb),
        )
        for ok, name, rule, value in checks:
            if not ok:
                raise ConfigError(f"{where}.{name} {rule}, got {value!r}")
        self.camera_id = camera_id
        self.where = where
        self.clock = clock  # ns; "now" for stamps (the ROS clock in ROS nodes, else the wall clock)
        self.every_nth = every_nth
        self.max_fps = max_fps
        self.max_frames = max_frames
        self.timestamps = timestamps
        self.hwaccel = hwaccel
        self.hwaccel_device = hwaccel_device
        self.decode_threads = decode_threads
        self.decode_thread_type = decode_thread_type
        self.open_timeout_s = open_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.give_up_after_s = give_up_after_s
        self.max_attempts = max_attempts
        self.backoff = Backoff(backoff_initial_s, backoff_max_s, backoff_jitter)
        self.calibration = calibration_from_params(
            calibration_file, list(camera_matrix or []), distortion_model, list(distortion or []), where=where
        )
        self.packets = PacketRing(preroll_s, preroll_max_mb << 20)
        # Source protocol counters.
        self.fps = 0.0
        self.width = self.height = 0
        self.frames_decoded = 0
        self.frames_skipped = 0
        # Live figures.
        self.frames_dropped = 0
        self.packets_read = 0
        self.decode_errors = 0
        self.reconnects = 0
        self.attempts = 0
        self.decoder = "not opened yet"
        self.last_reconnect_s = 0.0  # outage length (last frame -> first frame again) of the latest reconnect
        self.last_connect_s = 0.0  # the latest successful attempt: its start -> its first frame
        self._attempt_started = 0.0
        self._state = "connecting"
        self._message = ""
        self._failure: str | None = None
        self._cond = threading.Condition()
        self._slot: _Latest | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._started_mono = time.monotonic()
        self._clock = StreamClock()
        self._said: set[str] = set()
        self._hardware_failed = False
        self._index = 0
        self._next_due_ns: int | None = None
        self._last_frame_mono: float | None = None
        self._newest_stamp_ns: int | None = None
        self._decoded_at: deque[float] = deque(maxlen=90)
        self._decode_ms: deque[float] = deque(maxlen=90)
        self._convert_ms: deque[float] = deque(maxlen=90)

    # -- what subclasses provide ----------------------------------------------------------------------------

    def describe(self) -> str:
        """The stream's name for messages (a URI with any password redacted, a device path)."""
        raise NotImplementedError

    def _open(self) -> Any:
        """Open the stream: an ``av`` input container. Raise on failure."""
        raise NotImplementedError

    def _explain(self, exc: BaseException, *, opening: bool, elapsed: float) -> str:
        """One line saying what went wrong (no password in it)."""
        return f"{type(exc).__name__}: {exc}"

    def _sender_base_ns(self, container: Any) -> int | None:
        """Wall-clock time (ns) of media time 0 by the sender's clock, where the stream has one."""
        return None

    # -- the Source protocol ---------------------------------------------------------------------------------

    @property
    def camera_info(self) -> CameraInfo | None:
        """The configured calibration, sized to the stream once its size is known; None when not configured."""
        if self.calibration is None:
            return None
        return self.calibration.sized(self.width, self.height) if self.width else self.calibration

    def frames(self) -> Iterator[Frame]:
        """The newest frame each time the caller is ready; returns on ``interrupt``/``close`` or at
        ``max_frames``; raises ``SourceError`` when the give-up policy ends the camera."""
        self._start()
        yielded = 0
        try:
            while True:
                with self._cond:
                    while self._slot is None and not self._halt.is_set() and self._failure is None:
                        self._cond.wait()
                    latest, self._slot = self._slot, None
                    if latest is None:
                        if self._failure is not None and not self._closed:
                            raise SourceError(self._failure)
                        return
                t0 = time.perf_counter()
                image = latest.frame.to_ndarray(format="bgr24")
                with self._cond:  # status() copies these windows under the same lock
                    self._convert_ms.append((time.perf_counter() - t0) * 1e3)
                self.height, self.width = int(image.shape[0]), int(image.shape[1])
                yield Frame(image=image, stamp_ns=latest.stamp_ns, camera_id=self.camera_id, sequence=latest.sequence)
                yielded += 1
                if self.max_frames and yielded >= self.max_frames:
                    return
        finally:
            self.interrupt()

    def interrupt(self) -> None:
        """Stop capturing and wake ``frames()`` (any thread, never blocks); ``close`` joins the reader."""
        self._halt.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        self.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # The reader leaves at its next packet, or when FFmpeg's open / read timeout fires.
            thread.join(self.open_timeout_s + self.stall_timeout_s + 1.0)
            if thread.is_alive():
                log.error("camera %s: capture thread still running after close (%s)", self.camera_id, self.describe())
        with self._cond:
            self._closed = True
            self._slot = None
            if self._state != "failed":
                self._state = "closed"
        self.packets.reset(None)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- live figures --------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._cond:
            state = self._state
            last = self._last_frame_mono
        if state == "streaming" and last is not None and time.monotonic() - last > self._stall_warning_s():
            return "stalled"
        return state

    def _stall_warning_s(self) -> float:
        # "stalled" shows once a frame is clearly late (3 frame periods, at least 0.5 s: RTSP over TCP delivers
        # 30 fps in bursts up to ~0.1 s apart here) and at most half-way to the reconnect.
        late = max(0.5, 3.0 / self.fps) if self.fps > 0 else 1.0
        return min(late, self.stall_timeout_s / 2)

    def status(self) -> SourceStatus:
        now = time.monotonic()
        state = self.state
        with self._cond:
            message = self._message
            decoded_at = list(self._decoded_at)
            decode_ms = list(self._decode_ms)
            convert_ms = list(self._convert_ms)
            newest = self._newest_stamp_ns
        if state == "stalled":
            assert self._last_frame_mono is not None
            message = f"no frame for {now - self._last_frame_mono:.1f} s from {self.describe()}"
        elif state == "streaming" and not message:
            message = f"{self.describe()} ({self.decoder})"
        recent = [t for t in decoded_at if now - t < 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        mean = (sum(decode_ms) / len(decode_ms) if decode_ms else 0.0) + (
            sum(convert_ms) / len(convert_ms) if convert_ms else 0.0
        )
        return SourceStatus(
            state=state,
            message=message,
            decoded=self.frames_decoded,
            skipped=self.frames_skipped,
            dropped=self.frames_dropped,
            reconnects=self.reconnects,
            fps=fps,
            decode_ms=mean,
            frame_age_ms=(self.clock() - newest) / 1e6 if newest is not None else -1.0,
            decoder=self.decoder,
        )

    def preroll(self) -> Any:
        """The encoded packets kept now (a ``packet_ring.Clip`` starting at a keyframe), or None."""
        return self.packets.snapshot()

    # -- the reader thread ---------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._started_mono = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"ev-capture-{self.camera_id}", daemon=True)
            self._thread.start()

    def _set_state(self, state: str, message: str) -> None:
        with self._cond:
            if self._state != state or self._message != message:
                self._state, self._message = state, message
                self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # a bug here must fail the camera visibly, not leave frames() waiting for ever
            log.error("camera %s: capture thread failed:\n%s", self.camera_id, _traceback(exc))
            self._fail(f"{self.where}: capture of {self.describe()} failed: {redact(f'{type(exc).__name__}: {exc}')}")
        finally:
            with self._cond:
                self._cond.notify_all()

    def _supervise(self) -> None:
        failures = 0  # attempts in a row that produced no frame
        reason = said = ""
        while not self._halt.is_set():
            self.attempts += 1
            if self.attempts == 1:
                self._set_state("connecting", f"opening {self.describe()}")
            reason, produced, stalled = self._attempt()
            if self._halt.is_set():
                break
            failures = 0 if produced else failures + 1
            since = self._last_frame_mono if self._last_frame_mono is not None else self._started_mono
            quiet = time.monotonic() - since
            limits = []
            if self.max_attempts and failures >= self.max_attempts:
                limits.append(f"{failures} failed attempts in a row")
            if self.give_up_after_s and quiet >= self.give_up_after_s:
                limits.append(f"no frame for {quiet:.1f} s")
            if limits:
                self._fail(f"{self.where}: gave up on {self.describe()} after {' and '.join(limits)}: {reason}")
                return
            delay = self.backoff.next()
            # One warning per outage and per new reason (plus every 10th attempt), not one per retry.
            level = logging.WARNING if reason != said or failures % 10 == 0 else logging.DEBUG
            attempt = self.attempts + 1
            log.log(level, "camera %s: %s; reconnecting in %.1f s (attempt %d)", self.camera_id, reason, delay, attempt)
            said = reason
            self._set_state(
                "stalled" if stalled else "reconnecting",
                f"{reason}; reconnecting in {delay:.1f} s (attempt {self.attempts + 1})",
            )
            if stalled:  # the stalled state stays visible while waiting; the reconnect itself is "reconnecting"
                if self._halt.wait(delay):
                    break
                self._set_state("reconnecting", f"{reason}; attempt {self.attempts + 1}")
            elif self._halt.wait(delay):
                break

    def _fail(self, message: str) -> None:
        log.error("camera %s: %s", self.camera_id, message)
        with self._cond:
            self._failure = message
            self._state, self._message = "failed", message
            self._cond.notify_all()

    def _attempt(self) -> tuple[str, bool, bool]:
        """One connection: (why it ended, whether it produced frames, whether it stalled)."""
        t0 = self._attempt_started = time.monotonic()
        try:
            container = self._open()
        except Exception as exc:  # every way an open fails is a reason to retry
            return self._explain(exc, opening=True, elapsed=time.monotonic() - t0), False, False
        before = self.frames_decoded
        stalled = False
        try:
            self._stream(container)
            reason = f"{self.describe()} ended the stream"
        except _Stalled as exc:
            reason, stalled = str(exc), True
        except SourceError as exc:
            reason = str(exc)
        except Exception as exc:  # a read error is a reason to reconnect, whatever FFmpeg says
            reason = self._explain(exc, opening=False, elapsed=time.monotonic() - t0)
            if not _is_io_error(exc):
                log.error("camera %s: unexpected capture error:\n%s", self.camera_id, _traceback(exc))
        finally:
            with contextlib.suppress(Exception):  # a dead connection may fail to close; it is gone either way
                container.close()
        return reason, self.frames_decoded > before, stalled

    def _stream(self, container: Any) -> None:
        if not container.streams.video:
            raise SourceError(f"{self.describe()} has no video stream")
        video = container.streams.video[0]
        context = video.codec_context
        rate = video.average_rate or video.guessed_rate
        self.fps = float(rate) if rate else self.fps
        time_base = video.time_base or Fraction(1, 90_000)
        self.packets.reset(
            StreamParams(
                codec=context.codec.name,
                width=context.width,
                height=context.height,
                time_base=time_base,
                fps=self.fps,
                extradata=bytes(context.extradata) if context.extradata else None,
            )
        )
        decoder = Decoder(
            video,
            hwaccel=self.hwaccel,
            device=self.hwaccel_device,
            threads=self.decode_threads,
            thread_type=self.decode_thread_type,
            camera=self.camera_id,
            log_once=self._said,
            gop=self.packets.current_gop,
            hardware_failed=self._hardware_failed,
        )
        self.decoder = decoder.label
        use_clock = self.timestamps == "stream" or (
            self.timestamps == "auto" and container.format.name not in self.clock_formats_without_time
        )
        self._clock.reset()
        last_frame = time.monotonic()
        first = True
        for packet in container.demux(video):
            if self._halt.is_set():
                return
            now = time.monotonic()
            if now - last_frame >= self.stall_timeout_s * 0.95:  # FFmpeg's read timeout wakes us at the latest
                raise _Stalled(f"no frame for {now - last_frame:.1f} s from {self.describe()}")
            if packet.size == 0:
                continue  # the demuxer's flush packet
            arrival_ns = self.clock()
            self.packets_read += 1
            self.packets.add(EncodedPacket(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe), arrival_ns))
            t0 = time.perf_counter()
            try:
                decoded = decoder.decode(packet)
            except Exception as exc:  # a corrupt packet costs its frame, not the stream
                self.decode_errors += 1
                if self.decode_errors == 1 or self.decode_errors % 100 == 0:
                    count, why = self.decode_errors, redact(str(exc))
                    log.warning("camera %s: undecodable packet (%d so far): %s", self.camera_id, count, why)
                continue
            self._hardware_failed = decoder.hardware_failed
            self.decoder = decoder.label
            if not decoded:
                continue
            per_frame_ms = (time.perf_counter() - t0) * 1e3 / len(decoded)
            sender = self._sender_base_ns(container) if use_clock else None
            for frame in decoded:
                if first:
                    first = False
                    self._on_first_frame()
                media_ns = None
                if use_clock and frame.pts is not None:
                    media_ns = int(frame.pts * time_base * 1_000_000_000)
                stamp = self._clock.stamp(media_ns, arrival_ns, sender)
                self._deliver(frame, stamp, per_frame_ms)
            last_frame = time.monotonic()
            if self._clock.sender_clock_rejected:
                self._say_once("clock", "the sender's wall clock is off by more than 2 s: stamping by arrival")

    def _on_first_frame(self) -> None:
        previous = self._last_frame_mono
        self.last_connect_s = time.monotonic() - self._attempt_started
        if previous is not None:
            self.reconnects += 1
            self.last_reconnect_s = time.monotonic() - previous
            log.warning(
                "camera %s: streaming again after %.1f s (%d reconnect(s)), %s",
                self.camera_id,
                self.last_reconnect_s,
                self.reconnects,
                self.describe(),
            )
        elif self.attempts > 1:
            log.warning("camera %s: streaming after %d attempts", self.camera_id, self.attempts)
        self.backoff.reset()  # frames again: the next outage starts with a short delay
        self._set_state("streaming", "")

    def _deliver(self, frame: Any, stamp_ns: int, decode_ms: float) -> None:
        now = time.monotonic()
        index = self._index
        self._index += 1
        self.frames_decoded += 1
        with self._cond:
            self._last_frame_mono = now
            self._newest_stamp_ns = stamp_ns
            self._decoded_at.append(now)
            self._decode_ms.append(decode_ms)
        if index % self.every_nth or not self._due(stamp_ns):
            self.frames_skipped += 1
            return
        with self._cond:
            if self._slot is not None:
                self.frames_dropped += 1
            self._slot = _Latest(frame, stamp_ns, index)
            self._cond.notify_all()

    def _due(self, stamp_ns: int) -> bool:
        """The fps cap, by stamp: a schedule advanced by whole periods keeps the long-run rate exact."""
        if not self.max_fps:
            return True
        period = int(1e9 / self.max_fps)
        tolerance = int(0.5e9 / self.fps) if self.fps > self.max_fps else 0
        if self._next_due_ns is None or stamp_ns - self._next_due_ns > period:
            self._next_due_ns = stamp_ns  # first frame, or after a gap: restart the schedule here
        if stamp_ns + tolerance < self._next_due_ns:
            return False
        self._next_due_ns += period
        return True

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning("camera %s: %s", self.camera_id, message)


def _traceback(exc: BaseException) -> str:
    """A traceback for the log with secrets masked (FFmpeg errors quote the URL they failed on)."""
    return redact("".join(traceback.format_exception(exc)).rstrip())


def _is_io_error(exc: BaseException) -> bool:
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        return isinstance(exc, OSError)
    return isinstance(exc, (av.error.FFmpegError, OSError, EOFError))
