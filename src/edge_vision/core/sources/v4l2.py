"""USB (UVC) and other V4L2 cameras through PyAV/FFmpeg's video4linux2 input, supervised like network streams.

    camera:
      ros__parameters:
        source: v4l2
        device: /dev/video0
        width: 1280
        height: 720
        framerate: 30.0
        pixel_format: mjpeg

The device is checked when the source is built (it exists, is a V4L2 capture device, may be opened): those
errors name ``camera.device`` and are final. A device that is busy (another process captures from it), or that
disappears while streaming (unplugged), is reported on the camera's state and retried with backoff like a
dropped stream. Frames are stamped with the driver's capture time (``timestamps=mono2abs``: the kernel's
monotonic buffer time mapped to wall-clock), never in the future.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from typing import Any, ClassVar

from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.sources.live import LIVE_PARAMS, LiveSource

# struct v4l2_capability: driver[16] card[32] bus_info[32] version capabilities device_caps reserved[3]
_CAPABILITY = struct.Struct("16s32s32sIII12x")
VIDIOC_QUERYCAP = (2 << 30) | (_CAPABILITY.size << 16) | (ord("V") << 8) | 0  # _IOR('V', 0, v4l2_capability)
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_DEVICE_CAPS = 0x80000000
PIXEL_FORMATS = {"auto": "", "mjpeg": "mjpeg", "yuyv": "yuyv422", "h264": "h264", "nv12": "nv12", "gray": "gray"}


def query_capabilities(path: str) -> tuple[str, int]:
    """(card name, device capabilities) of a V4L2 node; OSError as the kernel returns it."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        raw = fcntl.ioctl(fd, VIDIOC_QUERYCAP, bytes(_CAPABILITY.size))
    finally:
        os.close(fd)
    _driver, card, _bus, _version, capabilities, device_caps = _CAPABILITY.unpack(raw)
    caps = device_caps if capabilities & CAP_DEVICE_CAPS else capabilities
    return card.split(b"\0", 1)[0].decode(errors="replace"), caps


def is_m2m_device(path: str) -> bool:
    """Whether ``path`` is a V4L2 memory-to-memory (codec) device."""
    try:
        return bool(query_capabilities(path)[1] & (CAP_VIDEO_M2M | CAP_VIDEO_M2M_MPLANE))
    except OSError:
        return False


def check_device(path: str, where: str = "camera.device") -> str:
    """The card name of capture device ``path``; SourceError naming the problem otherwise."""
    if not path:
        raise ConfigError(f"{where} is empty: name the camera's V4L2 device, e.g. /dev/video0")
    if not os.path.exists(path):
        raise SourceError(
            f"{where}: {path} does not exist: no V4L2 camera there (is it plugged in? `v4l2-ctl --list-devices` "
            "lists the cameras)"
        )
    if not stat.S_ISCHR(os.stat(path).st_mode):
        raise SourceError(f"{where}: {path} is not a device node")
    try:
        card, caps = query_capabilities(path)
    except PermissionError as exc:
        raise SourceError(f"{where}: {path}: permission denied (add the user to the 'video' group)") from exc
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise SourceError(f"{where}: {path} is busy: another process holds it") from exc
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            raise SourceError(f"{where}: {path} is not a V4L2 device") from exc
        raise SourceError(f"{where}: {path}: {exc.strerror or exc}") from exc
    if not caps & (CAP_VIDEO_CAPTURE | CAP_VIDEO_CAPTURE_MPLANE):
        kind = "a memory-to-memory codec" if caps & (CAP_VIDEO_M2M | CAP_VIDEO_M2M_MPLANE) else "not a capture node"
        raise SourceError(f"{where}: {path} ({card}) is {kind}, not a video capture device")
    return card


class V4L2Source(LiveSource):
    """A V4L2 camera: device path, resolution, frame rate, pixel format (MJPEG, YUYV...)."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("device", "/dev/video0", "V4L2 device node"),
        Param("width", 0, "capture width (0 = the driver's current setting)", min=0, max=16384),
        Param("height", 0, "capture height (0 = the driver's current setting)", min=0, max=16384),
        Param("framerate", 0.0, "capture frame rate (0 = the driver's current setting)", min=0.0, max=1000.0),
        Param(
            "pixel_format",
            "auto",
            "what the camera sends: mjpeg (compressed: high resolutions at full rate over USB 2), yuyv "
            "(uncompressed), h264, nv12, gray; auto = the driver's current setting",
            choices=tuple(PIXEL_FORMATS),
        ),
        Param("options", [""], "more FFmpeg video4linux2 options as key=value strings"),
        *LIVE_PARAMS,
    )

    def __init__(
        self,
        device: str = "/dev/video0",
        *,
        width: int = 0,
        height: int = 0,
        framerate: float = 0.0,
        pixel_format: str = "auto",
        options: list[str] | dict[str, str] | None = None,
        camera_id: str = "camera",
        **live: Any,
    ) -> None:
        if (width == 0) != (height == 0):
            raise ConfigError(f"camera.width and camera.height go together, got {width}x{height}")
        if pixel_format not in PIXEL_FORMATS:
            raise ConfigError(f"camera.pixel_format must be one of {list(PIXEL_FORMATS)}, got {pixel_format!r}")
        super().__init__(camera_id=camera_id, **live)
        self.device = device
        self.card = check_device(device)
        self.options: dict[str, str] = {"timestamps": "mono2abs"}
        if width:
            self.options["video_size"] = f"{width}x{height}"
        if framerate:
            self.options["framerate"] = f"{framerate:g}"
        if PIXEL_FORMATS[pixel_format]:
            self.options["input_format"] = PIXEL_FORMATS[pixel_format]
        if isinstance(options, dict):
            self.options.update({str(k): str(v) for k, v in options.items()})
        else:
            for item in options or []:
                key, sep, value = str(item).partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"camera.options: {item!r} is not key=value")
                self.options[key.strip()] = value.strip()
        self.width, self.height = width, height
        self.fps = framerate

    def describe(self) -> str:
        return f"{self.device} ({self.card})" if self.card else self.device

    def _open(self) -> Any:
        import av

        if not os.path.exists(self.device):
            raise FileNotFoundError(errno.ENOENT, "device disappeared (unplugged?)", self.device)
        return av.open(
            self.device,
            format="video4linux2",
            options=self.options,
            timeout=(self.open_timeout_s, self.stall_timeout_s),
        )

    def _sender_base_ns(self, container: Any) -> int | None:
        return 0  # mono2abs: pts are wall-clock microseconds already

    def _explain(self, exc: BaseException, *, opening: bool, elapsed: float) -> str:
        code = getattr(exc, "errno", None)
        text = str(getattr(exc, "strerror", None) or exc)
        where = f"camera.device {self.device}"
        if code == errno.EBUSY or "busy" in text.lower():
            return f"{where} is busy: another process is capturing from it (`fuser {self.device}` names it)"
        if code in (errno.ENOENT, errno.ENODEV) or "No such" in text:
            return f"{where} disappeared (unplugged?)"
        if code in (errno.EACCES, errno.EPERM):
            return f"{where}: permission denied (add the user to the 'video' group)"
        if "Immediate exit requested" in text:
            limit = self.open_timeout_s if opening else self.stall_timeout_s
            return f"{where}: no frame within {limit:.1f} s"
        if opening and ("video_size" in self.options or "input_format" in self.options):
            asked = " ".join(self.options[k] for k in ("video_size", "input_format") if k in self.options)
            text += f" (does the camera support {asked}?)"
        return f"{where}: {type(exc).__name__}: {text}"
