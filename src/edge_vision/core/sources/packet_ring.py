"""The most recent *encoded* packets of one camera, whole GOPs only, so a clip recorder can write the seconds
before an event (pre-roll) without decoding or re-encoding anything.

``PacketRing`` keeps every packet from the oldest keyframe that is still needed to cover ``seconds`` of the
newest arrivals, bounded by ``max_bytes`` (oldest GOPs go first; a lone GOP over the limit is dropped whole
and the ring waits for the next keyframe). The current GOP is always kept, also with ``seconds=0``: a decoder
that has to be replaced mid-stream (hardware -> software) is primed with it, so no frame is lost.
``snapshot()`` returns an immutable ``Clip`` that always starts at a keyframe; ``write_clip`` writes one.

A new connection calls ``reset``: timestamps and codec parameters of the old one do not carry over.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

_START_CODE = b"\x00\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    data: bytes
    pts: int | None  # in ``StreamParams.time_base``
    dts: int | None
    keyframe: bool
    arrival_ns: int  # wall-clock time the packet was read


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a muxer needs to take the packets as they are."""

    codec: str  # FFmpeg codec name: h264, hevc, mjpeg...
    width: int
    height: int
    time_base: Fraction
    fps: float
    extradata: bytes | None = None  # SPS/PPS: Annex-B (RTSP) or avcC / hvcC (MP4, RTMP)


@dataclass(frozen=True, slots=True)
class Clip:
    params: StreamParams
    packets: tuple[EncodedPacket, ...]  # packets[0] is a keyframe

    @property
    def duration_s(self) -> float:
        if len(self.packets) < 2:
            return 0.0
        return (self.packets[-1].arrival_ns - self.packets[0].arrival_ns) / 1e9

    @property
    def nbytes(self) -> int:
        return sum(len(p.data) for p in self.packets)


class PacketRing:
    """Thread-safe: the capture thread ``add``s, anyone may ``snapshot``."""

    def __init__(self, seconds: float = 5.0, max_bytes: int = 32 << 20) -> None:
        if seconds < 0 or max_bytes <= 0:
            raise ValueError(f"PacketRing needs seconds >= 0 and max_bytes > 0, got {seconds}, {max_bytes}")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.params: StreamParams | None = None
        self._gops: deque[list[EncodedPacket]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def reset(self, params: StreamParams | None) -> None:
        with self._lock:
            self.params = params
            self._gops.clear()
            self._bytes = 0

    def add(self, packet: EncodedPacket) -> None:
        with self._lock:
            if packet.keyframe:
                self._gops.append([packet])
            elif self._gops:
                self._gops[-1].append(packet)
            else:
                return  # before the first keyframe: useless to a muxer or a decoder
            self._bytes += len(packet.data)
            newest = packet.arrival_ns
            # The oldest GOP goes once the next one alone reaches back far enough.
            while len(self._gops) > 1 and (newest - self._gops[1][0].arrival_ns) >= self.seconds * 1e9:
                self._drop_oldest()
            while self._bytes > self.max_bytes and self._gops:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        self._bytes -= sum(len(p.data) for p in self._gops.popleft())

    def snapshot(self) -> Clip | None:
        """The packets kept now (starting at a keyframe), or None when there are none."""
        with self._lock:
            if self.params is None or not self._gops:
                return None
            return Clip(self.params, tuple(p for gop in self._gops for p in gop))

    def current_gop(self) -> list[EncodedPacket]:
        """The packets since the newest keyframe (enough to prime a fresh decoder)."""
        with self._lock:
            return list(self._gops[-1]) if self._gops else []

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes


# -- writing a clip without re-encoding -----------------------------------------------------------------------


def _annexb_parameter_sets(codec: str, extradata: bytes | None) -> tuple[bytes, int]:
    """(parameter sets in Annex-B form, NAL length size of the packets: 0 when they are Annex-B already)."""
    if not extradata:
        return b"", 0
    if extradata.startswith((b"\x00\x00\x01", _START_CODE)):
        return extradata, 0
    units: list[bytes] = []
    if codec == "h264" and len(extradata) >= 7 and extradata[0] == 1:  # avcC
        length_size = (extradata[4] & 3) + 1
        offset = 5
        for mask in (0x1F, 0xFF):  # SPS count (low 5 bits), then PPS count
            count = extradata[offset] & mask
            offset += 1
            for _ in range(count):
                size = int.from_bytes(extradata[offset : offset + 2], "big")
                units.append(extradata[offset + 2 : offset + 2 + size])
                offset += 2 + size
        return b"".join(_START_CODE + u for u in units), length_size
    if codec == "hevc" and len(extradata) >= 23:  # hvcC
        length_size = (extradata[21] & 3) + 1
        offset = 23
        for _ in range(extradata[22]):
            count = int.from_bytes(extradata[offset + 1 : offset + 3], "big")
            offset += 3
            for _ in range(count):
                size = int.from_bytes(extradata[offset : offset + 2], "big")
                units.append(extradata[offset + 2 : offset + 2 + size])
                offset += 2 + size
        return b"".join(_START_CODE + u for u in units), length_size
    raise ValueError(f"unsupported {codec} extradata ({len(extradata)} bytes)")


def _to_annexb(data: bytes, length_size: int) -> bytes:
    if not length_size:
        return data
    out, offset = [], 0
    while offset + length_size <= len(data):
        size = int.from_bytes(data[offset : offset + length_size], "big")
        out.append(_START_CODE + data[offset + length_size : offset + length_size + size])
        offset += length_size + size
    return b"".join(out)


def _has_parameter_sets(codec: str, data: bytes) -> bool:
    """Whether an Annex-B access unit carries its SPS (H.264 type 7, HEVC type 33) in-band."""
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        header = data[index + 3]
        if (codec == "h264" and header & 0x1F == 7) or (codec == "hevc" and (header >> 1) & 0x3F == 33):
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False


def write_clip(clip: Clip, path: str | Path) -> int:
    """Write ``clip`` as it was received: H.264/HEVC to MPEG-TS (Annex-B, parameter sets in front of every
    keyframe that lacks them), MJPEG to AVI. Returns the number of packets written."""
    import av

    params = clip.params
    out_path = Path(path)
    if params.codec in ("h264", "hevc"):
        container_format = "mpegts"
        parameter_sets, length_size = _annexb_parameter_sets(params.codec, params.extradata)
    elif params.codec == "mjpeg":
        container_format, parameter_sets, length_size = "avi", b"", 0
    else:
        raise ValueError(f"write_clip: no pre-roll writer for codec {params.codec!r} (h264, hevc, mjpeg)")
    first = clip.packets[0]
    # AVI is frame-indexed (a gap in pts becomes empty frames): number the frames. TS keeps the stream's
    # own timestamps where every packet has one, else arrival times.
    rate = Fraction(params.fps).limit_denominator(1001) if params.fps > 0 else Fraction(10)
    timed = container_format == "mpegts" and all(p.pts is not None for p in clip.packets)
    time_base = params.time_base if timed else (1 / rate if container_format == "avi" else Fraction(1, 1_000_000))
    start = first.pts if timed and first.pts is not None else 0
    written = 0
    with av.open(str(out_path), "w", format=container_format) as output:
        stream: Any = output.add_mux_stream(params.codec, rate=rate, width=params.width, height=params.height)
        stream.time_base = time_base if container_format == "avi" else Fraction(1, 90_000)
        for index, packet in enumerate(clip.packets):
            data = packet.data
            if container_format == "mpegts":
                data = _to_annexb(data, length_size)
                if packet.keyframe and parameter_sets and not _has_parameter_sets(params.codec, data):
                    data = parameter_sets + data
            av_packet = av.Packet(data)
            if timed:
                assert packet.pts is not None
                av_packet.pts = packet.pts - start
                av_packet.dts = (packet.dts if packet.dts is not None else packet.pts) - start
            elif container_format == "avi":
                av_packet.pts = av_packet.dts = index
            else:
                av_packet.pts = av_packet.dts = (packet.arrival_ns - first.arrival_ns) // 1000
            av_packet.time_base = time_base
            av_packet.is_keyframe = packet.keyframe
            av_packet.stream = stream
            output.mux(av_packet)
            written += 1
    return written
