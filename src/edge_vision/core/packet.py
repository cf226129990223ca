"""``FramePacket``: what travels between stages. In a composed pipeline one packet object is handed from
stage to stage by reference, so the frame's pixel buffer is never copied."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame
from edge_vision.core.interfaces import Source


@dataclass(slots=True)
class FramePacket:
    frame: Frame
    detections: Detections | None = None  # None: the detector did not run on this frame
    tracks: Detections | None = None
    events: list[Event] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.perf_counter)  # for end-to-end pipeline latency


def decoded_packets(source: Source) -> Iterator[FramePacket]:
    """Packets of the source's frames, each stamped with the time its decode took (``timings_ms["decode"]``)."""
    frames = source.frames()
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        packet = FramePacket(frame)
        packet.timings_ms["decode"] = (time.perf_counter() - t0) * 1e3
        yield packet


class SequenceFromStamps:
    """Source frame indices for a node that only sees message headers (no sequence field in ROS headers).

    With ``frame_rate`` > 0 the index is derived from the stamp (file sources stamp on their media clock, so
    frames skipped upstream show as gaps); otherwise messages are counted.
    """

    def __init__(self, frame_rate: float = 0.0) -> None:
        self.frame_rate = frame_rate
        self._first_ns: int | None = None
        self._count = -1

    def __call__(self, stamp_ns: int) -> int:
        self._count += 1
        if self.frame_rate <= 0:
            return self._count
        if self._first_ns is None:
            self._first_ns = stamp_ns
        return round((stamp_ns - self._first_ns) * self.frame_rate / 1e9)
