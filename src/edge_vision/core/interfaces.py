"""The plugin contracts. A third-party package adds a plugin by implementing one of these and naming
it under the matching entry-point group in its own packaging metadata (see ``plugins.GROUPS``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.detections import Detections
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame


@runtime_checkable
class Source(Protocol):
    """Yields decoded frames until the stream ends; ``close`` releases the device or file."""

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs a model on prepared input tensors (ONNX Runtime, TensorRT, OpenVINO...)."""

    input_name: str
    input_shape: tuple[int, ...]
    metadata: Mapping[str, str]

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]: ...


@runtime_checkable
class ModelAdapter(Protocol):
    """Knows one model family's tensor layout: image -> input tensor, outputs -> Detections."""

    def preprocess(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float32], Any]:
        """Return the input tensor and whatever ``postprocess`` needs to map boxes back."""
        ...

    def postprocess(self, outputs: Sequence[NDArray[np.float32]], transform: Any) -> Detections:
        """Return detections in source-image pixels."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Assigns stable ids; ``update`` returns the detections of confirmed tracks with track_ids set."""

    def update(self, detections: Detections, frame: Frame) -> Detections: ...

    def reset(self) -> None: ...


@runtime_checkable
class Rule(Protocol):
    """Turns tracked detections over time into events (zones, lines, dwell...)."""

    name: str

    def update(self, tracks: Detections, frame: Frame) -> list[Event]: ...


@runtime_checkable
class Action(Protocol):
    """Does something with events (write JSONL, snapshot, alert...)."""

    def handle(self, events: Sequence[Event], frame: Frame, tracks: Detections) -> None: ...

    def close(self) -> None: ...
