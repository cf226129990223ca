"""``Detector``: backend + adapter + labels, the whole image -> Detections step, with stage timings.

Outputs that are not detections never pass as ones: rows with NaN/inf scores or boxes (the adapters drop
them) and class ids outside the labels are dropped, counted in ``invalid`` and logged (WARN, at most every
10 s with the running total). Labels must match the model: a labels file with more or fewer names than the
classes the output layout holds is a ConfigError naming ``detector.labels``, the file and both counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core import plugins, telemetry
from edge_vision.core.detection.adapters import Thresholds, guess_adapter
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError, ModelError, PluginError
from edge_vision.core.interfaces import InferenceBackend, ModelAdapter

log = logging.getLogger(__name__)
_WARN_EVERY_S = 10.0


@dataclass(slots=True)
class DetectorTimings:
    """Milliseconds spent in each sub-stage of the last ``detect`` call."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0


def protocol_members(protocol: type) -> list[str]:
    """The attributes and methods a ``typing.Protocol`` declares (``typing.get_protocol_members`` is 3.13+)."""
    names = set(vars(protocol).get("__annotations__", {}))
    names.update(
        n for n, v in vars(protocol).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))
    )
    return sorted(names)


def check_plugin(obj: object, protocol: type, kind: str, name: str) -> None:
    """Raise ``PluginError`` naming every member of ``protocol`` that the built plugin ``obj`` lacks."""
    missing = [member for member in protocol_members(protocol) if not hasattr(obj, member)]
    if missing:
        raise PluginError(
            f"{kind} plugin {name!r} ({type(obj).__module__}.{type(obj).__qualname__}) does not implement "
            f"{protocol.__name__}: it lacks {', '.join(missing)}"
        )


def load_labels(path: str | Path) -> list[str]:
    labels_path = Path(path)
    if not labels_path.is_file():
        raise ConfigError(f"labels file not found: {labels_path}")
    labels = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ConfigError(f"labels file {labels_path} is empty")
    return labels


class Detector:
    def __init__(
        self,
        backend: InferenceBackend,
        adapter: ModelAdapter,
        labels: Sequence[str],
        classes: Sequence[str] | None = None,
    ) -> None:
        self.backend = backend
        self.adapter = adapter
        self.labels = list(labels)
        self.timings = DetectorTimings()
        self.invalid = 0  # output rows dropped so far: NaN/inf score or box, or a class id outside the labels
        self._invalid_said = 0
        self._invalid_said_at = 0.0
        self._invalid_lock = threading.Lock()
        upload = getattr(backend, "upload", None)
        self._upload = upload if callable(upload) else None
        self._class_filter = self._filter(classes)

    def _filter(self, classes: Sequence[str] | None) -> NDArray[np.int32] | None:
        if not classes:
            return None
        unknown = [c for c in classes if c not in self.labels]
        if unknown:
            raise ConfigError(f"detector.classes names unknown classes {unknown}; the model knows {self.labels}")
        return np.array([self.labels.index(c) for c in classes], dtype=np.int32)

    def retune(self, thresholds: Thresholds, classes: Sequence[str] | None) -> None:
        """New thresholds and class filter, validated first (ConfigError naming them); the next ``detect`` uses
        them. Call it on the thread that runs ``detect`` (a live ``ros2 param set``)."""
        class_filter = self._filter(classes)
        self.adapter.thresholds = thresholds
        self._class_filter = class_filter

    @classmethod
    def from_config(
        cls,
        model: str | Path,
        *,
        backend: str = "onnxruntime",
        backend_params: Mapping[str, Any] | None = None,
        adapter: str = "auto",
        labels: str | Path | None = None,
        classes: Sequence[str] | None = None,
        confidence: float = 0.3,
        iou: float = 0.45,
        max_detections: int = 300,
    ) -> Detector:
        """Build backend and adapter through the plugin registry; ``adapter='auto'`` reads the output layout.

        ``backend_params`` are the backend plugin's own ``PARAMS`` (validated; errors name ``detector.<key>``)."""
        telemetry.disable()  # before any inference runtime is loaded (see core.telemetry)
        engine = plugins.build("backends", backend, backend_params or {}, where="detector", model_path=model)
        check_plugin(engine, InferenceBackend, "backends", backend)
        if adapter == "auto":
            adapter = guess_adapter(engine.output_shapes[0], dict(engine.metadata), outputs=engine.output_shapes)
        thresholds = Thresholds(confidence=confidence, iou=iou, max_detections=max_detections)
        model_adapter = plugins.build(
            "model_adapters", adapter, {}, where="detector", input_size=engine.input_size, thresholds=thresholds
        )
        check_plugin(model_adapter, ModelAdapter, "model_adapters", adapter)
        # Optional, outside the protocol: an adapter that reads stride / normalisation from the model metadata.
        use_metadata = getattr(model_adapter, "use_metadata", None)
        if callable(use_metadata):
            try:
                use_metadata(dict(engine.metadata))
            except ModelError as exc:
                raise ModelError(f"model {model}: {exc}") from exc
        names = load_labels(labels) if labels else engine.class_names()
        if names is None:
            raise ConfigError(f"model {model} embeds no class names: set detector.labels to a labels file")
        detector = cls(engine, model_adapter, names, classes)
        detector._check_output(Path(model))
        count = getattr(model_adapter, "num_classes", None)
        predicted = count(engine.output_shapes) if callable(count) else None
        if predicted is not None and predicted != len(names):
            # A shorter list showed the missing classes as numbers; a longer one named classes wrongly.
            if labels:
                raise ConfigError(
                    f"detector.labels: {labels} has {len(names)} class names but model {model} predicts "
                    f"{predicted} classes: use the labels file the model was trained with"
                )
            raise ModelError(
                f"model {model} embeds {len(names)} class names but predicts {predicted} classes: "
                "set detector.labels to the right labels file"
            )
        if detector.invalid:  # NaN/inf or class ids beyond the labels on a plain input: broken, not unlucky
            raise ModelError(
                f"model {model} gives {detector.invalid} output row(s) with NaN/inf scores or boxes or class ids "
                f"beyond its {len(names)} labels on a blank image"
            )
        return detector

    def _check_output(self, model: Path) -> None:
        """Run once on a blank image so a model that does not fit its adapter fails at start-up, not mid-stream."""
        h, w = self.backend.input_size
        try:
            self.detect(np.zeros((h, w, 3), np.uint8))
        except ModelError as exc:
            raise ModelError(f"model {model} does not fit adapter {type(self.adapter).__name__}: {exc}") from exc

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        t0 = time.perf_counter()
        if self._upload is not None:  # a GPU backend: pre-process on the device, copying only the uint8 frame
            image = self._upload(image)
        tensor, transform = self.adapter.preprocess(image)
        t1 = time.perf_counter()
        outputs = self.backend.infer(tensor)
        t2 = time.perf_counter()
        detections = self.adapter.postprocess(outputs, transform)
        invalid = int(getattr(self.adapter, "nonfinite", 0))
        if len(detections):
            known = (detections.class_ids >= 0) & (detections.class_ids < len(self.labels))
            if not known.all():
                invalid += int(len(known) - np.count_nonzero(known))
                detections = detections[known]
        if invalid:
            self._count_invalid(invalid)
        if self._class_filter is not None:
            detections = detections[np.isin(detections.class_ids, self._class_filter)]
        t3 = time.perf_counter()
        self.timings = DetectorTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return detections

    def _count_invalid(self, rows: int) -> None:
        """Rows of model output that were not detections: counted, and said at most every 10 s."""
        now = time.monotonic()
        with self._invalid_lock:  # several worker threads may share one detector's counters
            self.invalid += rows
            if now - self._invalid_said_at < _WARN_EVERY_S:
                return
            new, self._invalid_said, self._invalid_said_at = self.invalid - self._invalid_said, self.invalid, now
        log.warning(
            "detector: dropped %d output row(s) with NaN/inf scores or boxes or class ids outside the %d labels "
            "(%d so far): check the model export / quantisation",
            new,
            len(self.labels),
            self.invalid,
        )
