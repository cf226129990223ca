"""Network streams through PyAV/FFmpeg, supervised: RTSP (TCP or UDP), RTMP, HTTP(S) MJPEG, HLS, SRT, UDP.

    camera:
      ros__parameters:
        source: stream
        uri: rtsp://user:secret@192.168.1.20:554/stream1
        transport: tcp
        stall_timeout_s: 5.0

Low latency: the newest frame is handed on and older ones are dropped and counted (see ``live``); FFmpeg
starts fast (``probesize`` / ``analyzeduration_s``: measured on the test RTSP server, FFmpeg's default probing
took 0.95 s to the first frame, these defaults 0.06 s) and does not buffer (``fflags=nobuffer``). A live
HLS playlist starts at its newest segment. Everything else is in ``live.LIVE_PARAMS`` (reconnects, stall
detection, hardware decoding, fps cap, timestamps, pre-roll packets, calibration). Messages name the URI with
any password (and token-like query values) replaced by ``***`` (``core.secrets.redact``). A password can come
from the environment instead of the config: ``uri: rtsp://user:${CAM1_PASSWORD}@host/stream1`` is expanded
at each (re)connection, so neither the file nor the ROS parameter holds it.
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar
from urllib.parse import urlsplit

from edge_vision.core import secrets
from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError
from edge_vision.core.secrets import redact
from edge_vision.core.sources.live import LIVE_PARAMS, LiveSource

__all__ = ["StreamSource", "redact"]

SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")
TRANSPORTS = ("tcp", "udp", "udp_multicast", "http", "auto")
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}


def _tcp_probe(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to host:port fails (None: it connects, so the problem is further up)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"cannot resolve host {host!r}"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port} (nothing listening: is the camera / server up?)"
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:.1f} s (host down or filtered)"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


class StreamSource(LiveSource):
    """A network stream, reconnected for ever (by default) when it drops, stalls or fails."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("uri", "", "stream URL: rtsp://, rtsps://, rtmp://, http(s):// (MJPEG or HLS .m3u8), srt://, udp://"),
        Param(
            "transport",
            "tcp",
            "RTSP transport: tcp (interleaved: no loss, passes firewalls), udp (no head-of-line blocking), "
            "udp_multicast, http (tunnelled); auto = FFmpeg tries udp then tcp",
            choices=TRANSPORTS,
        ),
        Param("probesize", 32768, "bytes FFmpeg reads to learn the stream's parameters (fast start)", min=32),
        Param("analyzeduration_s", 0.0, "seconds FFmpeg analyses before the first frame (0: probesize decides)", min=0),
        Param("options", [""], "more FFmpeg options as key=value strings (they win over the ones above)"),
        *LIVE_PARAMS,
    )

    def __init__(
        self,
        uri: str = "",
        *,
        transport: str = "tcp",
        probesize: int = 32768,
        analyzeduration_s: float = 0.0,
        options: list[str] | dict[str, str] | None = None,
        camera_id: str = "camera",
        **live: Any,
    ) -> None:
        if not uri:
            raise ConfigError("camera.uri is required by the stream source (rtsp://, http://...)")
        scheme = uri.partition("://")[0].lower() if "://" in uri else ""
        if scheme not in SCHEMES:
            raise ConfigError(
                f"camera.uri {redact(uri)!r} is not a stream URL ({', '.join(s + '://' for s in SCHEMES)}); "
                "video files take source: file, USB cameras source: v4l2"
            )
        if transport not in TRANSPORTS:
            raise ConfigError(f"camera.transport must be one of {list(TRANSPORTS)}, got {transport!r}")
        secrets.check_references(uri, "camera.uri")  # a missing variable fails now, naming it
        super().__init__(camera_id=camera_id, **live)
        self.uri = uri  # as configured: ${NAME} references stay unexpanded until the stream is opened
        self.scheme = scheme
        self.transport = transport
        self.options = self._options(probesize, analyzeduration_s, options)

    def _options(
        self, probesize: int, analyzeduration_s: float, extra: list[str] | dict[str, str] | None
    ) -> dict[str, str]:
        options = {
            "probesize": str(probesize),
            "analyzeduration": str(int(analyzeduration_s * 1e6)),
            "fflags": "nobuffer",
        }
        if self.scheme in ("rtsp", "rtsps") and self.transport != "auto":
            options["rtsp_transport"] = self.transport
        if urlsplit(self.uri).path.endswith(".m3u8"):
            options["live_start_index"] = "-1"  # the newest segment of a live playlist, not three back
        if isinstance(extra, dict):
            options.update({str(k): str(v) for k, v in extra.items()})
        else:
            for item in extra or []:
                key, sep, value = str(item).partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"camera.options: {item!r} is not key=value")
                options[key.strip()] = value.strip()
        return options

    def describe(self) -> str:
        return redact(self.uri)

    def _open(self) -> Any:
        import av

        uri = secrets.expand(self.uri, "camera.uri")  # at each attempt: a rotated secret is taken on reconnect
        return av.open(uri, options=self.options, timeout=(self.open_timeout_s, self.stall_timeout_s))

    def _sender_base_ns(self, container: Any) -> int | None:
        # RTSP: FFmpeg learns the sender's wall clock of pts 0 from its first RTCP sender report.
        realtime = getattr(container, "start_time_realtime", None)
        return int(realtime) * 1000 if realtime else None

    def _explain(self, exc: BaseException, *, opening: bool, elapsed: float) -> str:
        text = redact(str(getattr(exc, "strerror", None) or exc))
        where = self.describe()
        # PyAV's timeout interrupted FFmpeg: while opening, FFmpeg's RTSP demuxer reports that as "Invalid data"
        # (measured with a SIGSTOPped server), so the elapsed time tells.
        if opening and elapsed >= self.open_timeout_s * 0.95:
            return f"{where}: no answer within {self.open_timeout_s:.1f} s"
        if "Immediate exit requested" in text:
            return f"{where}: no data for {self.stall_timeout_s:.1f} s"
        if opening:
            parts = urlsplit(secrets.expand(self.uri, "camera.uri"))  # the host may come from the environment
            port = parts.port or _DEFAULT_PORTS.get(self.scheme)
            if parts.hostname and port and self.scheme in _DEFAULT_PORTS:
                why = _tcp_probe(parts.hostname, port, min(1.0, self.open_timeout_s))
                if why is not None:
                    return f"{where}: {why}"
            return f"{where}: cannot open: {type(exc).__name__}: {text}"
        return f"{where}: {type(exc).__name__}: {text}"
