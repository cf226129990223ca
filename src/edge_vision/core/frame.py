"""One decoded video frame, and the metadata that travels with every result apart from its pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """Where and when a frame came from: what trackers, rules and events need, without pixels.

    stamp_ns: capture time in ns (media clock for files, arrival or stream clock for live sources); every
        time-dependent stage (tracker motion model, track buffer, rule timeouts, dwell) reads time from here.
    sequence: the source's frame index (informational: gaps show frames skipped by ``every_nth``).
    width, height: of the source image in pixels; 0 where unknown (a node that only sees detections).
    """

    stamp_ns: int
    camera_id: str
    sequence: int
    width: int = 0
    height: int = 0

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9


@dataclass(frozen=True, slots=True)
class Frame:
    """Pixels plus where and when they came from.

    ``image`` is an HxWx3 ``uint8`` array in ``encoding`` order (``bgr8`` by default). Stages must treat
    it as read-only: in a composed pipeline the same buffer is shared by every stage, never copied.
    """

    image: NDArray[np.uint8]
    stamp_ns: int
    camera_id: str
    sequence: int
    encoding: str = "bgr8"

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def meta(self) -> FrameMeta:
        return FrameMeta(self.stamp_ns, self.camera_id, self.sequence, self.width, self.height)
