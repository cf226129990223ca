"""``FramePacket``: what travels between stages. In a composed pipeline one packet object is handed from
stage to stage by reference, so the frame's pixel buffer is never copied.

Metadata (camera, stamp, sequence, size) travels apart from pixels: a stage fed from a detections topic gets
a packet with ``image=None``, never a fake frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.interfaces import Source


@dataclass(slots=True)
class FramePacket:
    meta: FrameMeta
    image: NDArray[np.uint8] | None = None  # bgr8 HxWx3, read-only: shared by every stage
    detections: Detections | None = None  # None: the detector did not run on this frame
    tracks: Detections | None = None
    events: list[Event] = field(default_factory=list)
    annotated: NDArray[np.uint8] | None = None  # the drawn copy, when the annotate stage made one
    timings_ms: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.perf_counter)  # for end-to-end pipeline latency

    @classmethod
    def of(cls, frame: Frame) -> FramePacket:
        return cls(frame.meta, frame.image)

    @property
    def frame(self) -> Frame:
        """The pixels with their metadata; only for packets that carry an image."""
        if self.image is None:
            raise ValueError(f"packet {self.meta.camera_id}#{self.meta.sequence} carries no image")
        return Frame(self.image, self.meta.stamp_ns, self.meta.camera_id, self.meta.sequence)


def decoded_packets(source: Source) -> Iterator[FramePacket]:
    """Packets of the source's frames, each stamped with the time its decode took (``timings_ms["decode"]``)."""
    frames = source.frames()
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        packet = FramePacket.of(frame)
        packet.timings_ms["decode"] = (time.perf_counter() - t0) * 1e3
        yield packet
