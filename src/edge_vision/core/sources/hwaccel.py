"""Video decoding for live sources: hardware when configured and present, software otherwise.

``hwaccel`` (a source parameter) picks the path:

- ``none``: software (FFmpeg's own decoder, ``decode_threads`` threads of ``decode_thread_type``).
- ``nvdec``: FFmpeg's decoder with the CUDA hwaccel (NVDEC); ``cuvid``: FFmpeg's ``<codec>_cuvid`` decoders.
- ``vaapi``: VA-API (Intel/AMD, ``/dev/dri/renderD*``; ``hwaccel_device`` picks the node).
- ``v4l2m2m``: the ``<codec>_v4l2m2m`` decoders of SoCs (Raspberry Pi, Rockchip...): a V4L2 memory-to-memory device.
- ``videotoolbox``: macOS.
- ``auto``: the first of videotoolbox, nvdec, vaapi, v4l2m2m that this machine has.

A hardware path that is missing (no device, or an FFmpeg build without it), that silently decodes in software,
or that fails mid-stream hands over to software and says why, once per camera. Mid-stream the software
decoder is primed with the packets of the current GOP (kept by the packet ring), so the hand-over costs a
burst of decoding but no frame. Once a camera's hardware path failed it stays in software for the run.
Frames always come back in system memory (PyAV downloads them from the device).
"""

from __future__ import annotations

import glob
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_vision.core.secrets import redact
from edge_vision.core.sources.packet_ring import EncodedPacket

log = logging.getLogger(__name__)

HWACCEL_CHOICES = ("auto", "none", "nvdec", "cuvid", "vaapi", "v4l2m2m", "videotoolbox")
AUTO_ORDER = ("videotoolbox", "nvdec", "vaapi", "v4l2m2m")
THREAD_TYPES = ("slice", "frame", "auto")
# Codecs a hardware decoder may take; anything else (rawvideo from a USB camera...) is decoded in software quietly.
HARDWARE_CODECS = ("h264", "hevc", "av1", "vp8", "vp9", "mpeg2video", "mpeg4", "mjpeg", "vc1")
# FFmpeg hwaccel device type of each path that uses one (the others are separate decoders).
_DEVICE_TYPES = {"nvdec": "cuda", "vaapi": "vaapi", "videotoolbox": "videotoolbox"}


def _device_types() -> set[str]:
    from av.codec.hwaccel import hwdevices_available

    return set(hwdevices_available())


def _codecs() -> set[str]:
    import av

    return set(av.codecs_available)


def _m2m_devices() -> list[str]:
    from edge_vision.core.sources.v4l2 import is_m2m_device

    return [path for path in sorted(glob.glob("/dev/video*")) if is_m2m_device(path)]


def missing(kind: str, codec: str, device: str = "") -> str | None:
    """Why hardware path ``kind`` cannot decode ``codec`` on this machine (None: it looks present)."""
    if kind in ("nvdec", "cuvid"):
        if kind == "nvdec" and "cuda" not in _device_types():
            return "this FFmpeg build has no CUDA support"
        if kind == "cuvid" and f"{codec}_cuvid" not in _codecs():
            return f"this FFmpeg build has no {codec}_cuvid decoder"
        if not Path("/dev/nvidiactl").exists():
            return "no NVIDIA device (/dev/nvidiactl)"
        return None
    if kind == "vaapi":
        if "vaapi" not in _device_types():
            return "this FFmpeg build has no VA-API support (PyAV's wheels: build PyAV against the system FFmpeg)"
        if device and not Path(device).exists():
            return f"no VA-API render node {device}"
        if not device and not glob.glob("/dev/dri/renderD*"):
            return "no DRM render node (/dev/dri/renderD*)"
        return None
    if kind == "v4l2m2m":
        if f"{codec}_v4l2m2m" not in _codecs():
            return f"this FFmpeg build has no {codec}_v4l2m2m decoder"
        if not _m2m_devices():
            return "no V4L2 memory-to-memory decoder device (/dev/video*)"
        return None
    if kind == "videotoolbox":
        if sys.platform != "darwin" or "videotoolbox" not in _device_types():
            return "VideoToolbox exists on macOS only"
        return None
    raise ValueError(f"unknown hwaccel {kind!r}; expected one of {HWACCEL_CHOICES}")


def open_hardware(kind: str, stream_context: Any, device: str = "") -> Any:
    """A decoder context for ``kind`` set up like the stream's own (codec, size, extradata)."""
    import av
    from av.codec.hwaccel import HWAccel

    codec = stream_context.codec.name
    if kind in _DEVICE_TYPES:
        hw = HWAccel(_DEVICE_TYPES[kind], device=device or None, allow_software_fallback=False)
        context = av.CodecContext.create(codec, "r", hwaccel=hw)
    else:
        context = av.CodecContext.create(f"{codec}_{kind}", "r")
    context.width, context.height = stream_context.width, stream_context.height
    if stream_context.extradata:
        context.extradata = stream_context.extradata
    return context


def _uses_device(kind: str, context: Any) -> bool:
    """Whether a context really decodes on the device (PyAV falls back to software silently)."""
    if kind in _DEVICE_TYPES:
        return bool(getattr(context, "is_hwaccel", False))
    return True  # cuvid / v4l2m2m are hardware decoders themselves: they fail to open without a device


class Decoder:
    """Decodes one connection's packets.

    log_once: the camera's record of what it said already (survives reconnects).
    gop: the packets of the current GOP, the one being decoded last (see ``PacketRing.current_gop``).
    hardware_failed: set after a mid-stream failure; later connections go straight to software.
    """

    def __init__(
        self,
        stream: Any,
        *,
        hwaccel: str = "none",
        device: str = "",
        threads: int = 1,
        thread_type: str = "slice",
        camera: str = "camera",
        log_once: set[str] | None = None,
        gop: Callable[[], list[EncodedPacket]] = list,
        hardware_failed: bool = False,
    ) -> None:
        if hwaccel not in HWACCEL_CHOICES:
            raise ValueError(f"unknown hwaccel {hwaccel!r}; expected one of {HWACCEL_CHOICES}")
        if thread_type not in THREAD_TYPES:
            raise ValueError(f"unknown decode thread type {thread_type!r}; expected one of {THREAD_TYPES}")
        self.stream = stream
        self.codec = stream.codec_context.codec.name
        self.requested = hwaccel
        self.threads = threads
        self.thread_type = thread_type
        self.camera = camera
        self._said = log_once if log_once is not None else set()
        self._gop = gop
        self.hardware_failed = hardware_failed
        self.fallback_reason = ""
        self.kind = "none"  # the path in use
        self._hw: Any = None
        self._verified = False
        self._sw: Any = None
        self.frames = 0
        if hwaccel != "none" and self.codec in HARDWARE_CODECS:
            self._open_hardware(hwaccel, device)
        if self._hw is None:
            self._sw = self._software()

    # -- set-up --------------------------------------------------------------------------------------------

    def _open_hardware(self, requested: str, device: str) -> None:
        if self.hardware_failed:
            self.fallback_reason = "the hardware path failed earlier in this run"
            return
        kinds = AUTO_ORDER if requested == "auto" else (requested,)
        reasons = []
        for kind in kinds:
            why = missing(kind, self.codec, device)
            if why is None:
                try:
                    self._hw = open_hardware(kind, self.stream.codec_context, device)
                    self.kind = kind
                    return
                except Exception as exc:  # any failure to set up the device means: not usable here
                    why = f"{type(exc).__name__}: {exc}"
            reasons.append(f"{kind}: {why}")
        self.fallback_reason = "; ".join(reasons)
        self._say(
            f"unavailable:{requested}",
            f"hwaccel {requested}: no hardware decoder for {self.codec} here ({self.fallback_reason})",
        )

    def _software(self) -> Any:
        context = self.stream.codec_context
        if not context.is_open:
            context.thread_type = self.thread_type.upper()
            context.thread_count = self.threads
        return context

    def _say(self, key: str, message: str) -> None:
        if key in self._said:
            return
        self._said.add(key)
        # FFmpeg's device errors may quote the stream they were opened for: masked like every source message.
        log.warning("camera %s: %s; decoding in software (%s)", self.camera, redact(message), self.software_label)

    # -- decoding ------------------------------------------------------------------------------------------

    @property
    def hardware(self) -> bool:
        return self._hw is not None

    @property
    def software_label(self) -> str:
        threads = "auto threads" if self.threads == 0 else f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{self.codec} software, {threads}" + (f" ({self.thread_type})" if self.threads != 1 else "")

    @property
    def label(self) -> str:
        return f"{self.codec} {self.kind}" if self._hw is not None else self.software_label

    def decode(self, packet: Any) -> list[Any]:
        if self._hw is None:
            frames = list(self._sw.decode(packet))
            self.frames += len(frames)
            return frames
        try:
            frames = list(self._hw.decode(packet))
        except Exception as exc:  # whatever the device does, the stream goes on in software
            self._fall_back(f"failed mid-stream after {self.frames} frames: {type(exc).__name__}: {exc}")
            return self._decode_primed(packet)
        if frames and not self._verified:
            self._verified = True
            if not _uses_device(self.kind, self._hw):
                # Frames decoded in software by the hardware context: keep them, go on with the software one.
                self._fall_back("FFmpeg could not use the device and decoded in software", mid_stream=False)
                self._prime(include_last=True)
        self.frames += len(frames)
        return frames

    def _fall_back(self, reason: str, *, mid_stream: bool = True) -> None:
        kind = self.kind
        self._hw = None
        self.kind = "none"
        self.hardware_failed = self.hardware_failed or mid_stream
        self.fallback_reason = f"{kind}: {reason}"
        self._sw = self._software()
        self._say(f"failed:{kind}", f"hardware decoding ({kind}) {reason}")

    def _prime(self, *, include_last: bool) -> None:
        import av

        packets = self._gop()
        if not include_last:
            packets = packets[:-1]
        for old in packets:
            replay = av.Packet(old.data)
            replay.pts, replay.dts = old.pts, old.dts
            replay.time_base = self.stream.time_base
            try:
                self._sw.decode(replay)  # frames already delivered (or lost with the device): discard
            except Exception:  # a damaged old packet must not stop the hand-over
                continue

    def _decode_primed(self, packet: Any) -> list[Any]:
        self._prime(include_last=False)
        frames = list(self._sw.decode(packet))
        if packet.pts is not None:  # a frame-threaded decoder may still hold primed (older) frames: not new
            frames = [f for f in frames if f.pts is None or f.pts >= packet.pts]
        self.frames += len(frames)
        return frames
