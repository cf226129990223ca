"""The plugin contracts: everything the runtime calls on a plugin is declared here, nothing else is.

A plugin is one class in one module: a ``PARAMS`` tuple of ``config.Param`` (its typed schema: defaults,
ranges, descriptions), a constructor taking those parameters as keywords, and the methods of its kind below.
It is named under its kind's entry-point group (``plugins.GROUPS``) in its package's metadata, and built by
``plugins.build``, which validates the parameters against ``PARAMS`` and passes the run-time context a
constructor asks for by name (see ``plugins.CONTEXT``: ``name``, ``labels``, ``camera_id``, ``output_dir``,
``model_path``, ``input_size``, ``thresholds``).

Time: every time-dependent plugin reads ``FrameMeta.stamp_ns``, never a frame count, so composed and
standalone runs, ``every_nth`` and lossy transports give the same results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame, FrameMeta

if TYPE_CHECKING:
    from edge_vision.core.detection.adapters import Thresholds


@runtime_checkable
class Source(Protocol):
    """Yields decoded frames until the stream ends; ``close`` releases the device or file.

    ``fps``: the stream's nominal frame rate (0 if unknown); ``width`` / ``height``: its frame size.
    ``frames_decoded`` / ``frames_skipped``: running counters (skipped = decoded but not yielded, e.g.
    ``every_nth``), read live by the runtime's health."""

    PARAMS: ClassVar[tuple[Param, ...]]
    fps: float
    width: int  # of the frames it yields; 0 where unknown until the first frame
    height: int
    frames_decoded: int
    frames_skipped: int

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs a model on prepared input tensors (ONNX Runtime, TensorRT, OpenVINO...). Built with the context
    ``model_path`` plus its own ``PARAMS``; it must fail in the constructor (``ModelError`` naming the file)
    when the model cannot be loaded."""

    PARAMS: ClassVar[tuple[Param, ...]]
    input_name: str
    input_shape: tuple[int, ...]  # NCHW; -1 for a dynamic dimension
    output_shapes: list[list[int | str | None]]
    metadata: Mapping[str, str]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""
        ...

    def class_names(self) -> list[str] | None:
        """Class names embedded in the model, or None."""
        ...

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]: ...


@runtime_checkable
class ModelAdapter(Protocol):
    """Knows one model family's tensor layout: image -> input tensor, outputs -> Detections. Built with the
    context ``input_size`` and ``thresholds`` plus its own ``PARAMS``; ``thresholds`` may be replaced between
    two calls (live parameters)."""

    PARAMS: ClassVar[tuple[Param, ...]]
    thresholds: Thresholds

    def preprocess(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float32], Any]:
        """Return the input tensor and whatever ``postprocess`` needs to map boxes back."""
        ...

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: Any) -> Detections:
        """Return detections in source-image pixels."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Assigns stable ids; ``update`` returns the detections of confirmed tracks with track_ids set. Time
    (motion model, how long a lost track is kept) comes from ``meta.stamp_ns``."""

    PARAMS: ClassVar[tuple[Param, ...]]

    def update(self, detections: Detections, meta: FrameMeta) -> Detections: ...

    def reset(self) -> None: ...


@runtime_checkable
class Rule(Protocol):
    """Turns tracked detections over time into events (zones, lines, dwell...), and draws itself.

    ``check_frame`` is called once with the source size before the first update where it is known: geometry
    outside the frame is a ``ConfigError`` naming the rule and parameter."""

    PARAMS: ClassVar[tuple[Param, ...]]
    name: str

    def update(self, tracks: Detections, meta: FrameMeta) -> list[Event]: ...

    def check_frame(self, width: int, height: int) -> None: ...

    def draw(self, image: NDArray[np.uint8]) -> None:
        """Draw the rule's geometry and counters IN PLACE on a bgr8 image the caller owns."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class Action(Protocol):
    """Does something with each frame's results (write JSONL, snapshot, alert...). ``handle`` is called once
    per processed frame, in order, with that frame's events (often none). Actions run on their own queue and
    thread, so a slow or blocking action never stalls detection; ``close`` flushes and finalises."""

    PARAMS: ClassVar[tuple[Param, ...]]

    def handle(self, events: Sequence[Event], meta: FrameMeta, tracks: Detections) -> None: ...

    def close(self) -> None: ...
