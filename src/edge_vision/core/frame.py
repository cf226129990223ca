"""One decoded video frame, the unit that flows through every stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


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
