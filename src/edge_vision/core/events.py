"""``Event``: what a rule emits when something happens (a line is crossed, a zone is entered)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One typed event, tied to the frame and track that caused it.

    kind: ``line_cross``, ``zone_enter``, ``zone_exit`` (plugins may add more).
    direction: for line crossings, ``in`` or ``out`` (relative to the line's declared direction); else "".
    xyxy: the box of the track at the moment of the event, in source pixels.
    device_id: which device of a fleet saw it; rules leave it empty, the pipeline fills it in.
    """

    kind: str
    rule: str
    camera_id: str
    stamp_ns: int
    sequence: int
    track_id: int
    class_id: int
    class_name: str
    score: float
    xyxy: tuple[float, float, float, float]
    direction: str = ""
    device_id: str = ""  # pipeline.device_id (else the host name), stamped by the pipeline's event stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
