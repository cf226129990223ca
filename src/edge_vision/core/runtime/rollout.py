"""Model roll-out with rollback: swap the detector's model in a running pipeline without a restart.

``Rollout.install(values)`` (``detector`` section values with a new ``model``):

1. **validate**, off the frame path: the new model's detectors are built (one per worker), their classes must
   be the running model's (the tracker, rules and summary are keyed by class), and each runs on the last frames
   the detector saw (a blank frame when none has passed yet): no exception, finite outputs (latency is judged
   in probation). A failure raises ``ModelError`` naming the model and the reason; the running model is
   untouched.
2. **swap**: the detect stage takes the new sessions before its next frame (the old ones are kept).
3. **probation** (``detector.probation_s``, and at least ``MIN_PROBATION_FRAMES`` frames): the new model's
   errors and inference latency are watched; more than ``detector.rollback_max_errors`` errors, or a median
   latency above ``rollback_latency_ratio`` x the old model's, swaps the old sessions back at once and holds a
   WARN condition ``model`` on the health report (``/diagnostics``) that names the reason; ``on_rollback`` is
   then told the model now running (the ROS node resets its ``model`` parameter to it). Passing clears the
   condition, and ``on_accepted`` is told.

While a probation runs the ``model`` condition is WARN ("probation of X: 12 s left"): a roll-out is an
operator's action, and the fleet's dashboards should show which devices are in one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.errors import EdgeVisionError, ModelError
from edge_vision.core.runtime.health import OK, WARN, Health

if TYPE_CHECKING:
    from edge_vision.core.detection.detector import Detector

__all__ = ["MIN_PROBATION_FRAMES", "Generation", "Rollout", "validate"]

log = logging.getLogger(__name__)

MIN_PROBATION_FRAMES = 10
ROLLBACK_NOTICE_S = 300.0  # the WARN condition after a rollback, so a dashboard polled every minute sees it


@dataclass(slots=True)
class Generation:
    """The detect stage's current sessions and what they did since they were swapped in."""

    model: str
    detectors: list[Detector]
    frames: int = 0
    errors: int = 0
    inference_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # On probation: called (on the failing worker's thread) once errors exceed ``error_limit``, so the old
    # model is back before the next frame and before the pipeline's error budget can end the run.
    error_limit: int = -1
    on_error_limit: Callable[[], None] | None = None

    def record(self, ms: float | None) -> None:
        with self.lock:
            if ms is None:
                self.errors += 1
                over = self.on_error_limit if 0 <= self.error_limit < self.errors else None
            else:
                over = None
                self.frames += 1
                if len(self.inference_ms) < 10_000:
                    self.inference_ms.append(ms)
        if over is not None:
            over()

    def median_ms(self) -> float:
        with self.lock:
            return float(np.median(self.inference_ms)) if self.inference_ms else 0.0


class Rollout:
    """build: detector values -> one new detector (called once per worker).
    swap: puts a ``Generation`` into the detect stage (before its next frame) and returns the one it replaced.
    samples: the last images the detector saw (references, newest last)."""

    def __init__(
        self,
        *,
        health: Health,
        build: Callable[[Mapping[str, Any]], Detector],
        swap: Callable[[Generation], Generation],
        current: Callable[[], Generation],
        samples: Callable[[], Sequence[NDArray[np.uint8]]],
        on_rollback: Callable[[str, str], None] | None = None,
        on_accepted: Callable[[str], None] | None = None,
    ) -> None:
        self.health = health
        self._build = build
        self._swap = swap
        self._current = current
        self._samples = samples
        self.on_rollback = on_rollback
        self.on_accepted = on_accepted
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._wake = threading.Event()  # the new model's errors went over the limit: decide now
        self.last_outcome = ""  # "accepted: ..." / "rolled back: ..." (tests, the CLI's report)

    # -- install -------------------------------------------------------------------------------------------

    def install(self, values: Mapping[str, Any]) -> None:
        """Validate ``values["model"]`` and swap it in; probation runs on a thread. Raises ``ModelError``
        (nothing changed) when the model is unusable here."""
        model = str(values["model"])
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise ModelError(f"detector.model: a roll-out is already on probation; wait for it before {model}")
            old = self._current()
            workers = len(old.detectors)
            try:
                detectors = [self._build(values) for _ in range(workers)]
            except EdgeVisionError as exc:
                raise ModelError(f"detector.model {model}: {exc}") from exc
            if detectors[0].labels != old.detectors[0].labels:
                raise ModelError(
                    f"detector.model {model} has classes {_short(detectors[0].labels)}, the running model "
                    f"{_short(old.detectors[0].labels)}: a model with other classes needs a restart"
                )
            baseline = old.median_ms()
            # Its latency here is not judged: the sample runs compete with the running model for the cores
            # (a copy of the running model measured 38-42 ms against its own 19 ms on this 2-core machine);
            # probation judges the median over real frames, with the new model alone.
            latency = self._validate(model, detectors)
            new = Generation(model, detectors)
            replaced = self._swap(new)
            log.info("model %s swapped in (%.1f ms on the sample frames); probation starts", model, latency)
            self._cancel.clear()
            self._thread = threading.Thread(
                target=self._probation, args=(new, replaced, values, baseline), name="model-probation", daemon=True
            )
            self._thread.start()

    def _validate(self, model: str, detectors: Sequence[Detector]) -> float:
        return validate(model, detectors, self._samples())

    # -- probation -----------------------------------------------------------------------------------------

    def _probation(self, new: Generation, old: Generation, values: Mapping[str, Any], baseline: float) -> None:
        probation_s = float(values["probation_s"])
        max_errors = int(values["rollback_max_errors"])
        ratio = float(values["rollback_latency_ratio"])
        deadline = time.monotonic() + probation_s
        reason = ""
        swapped_back = threading.Event()
        swap_lock = threading.Lock()

        def swap_back() -> None:
            with swap_lock:
                if not swapped_back.is_set():
                    self._swap(old)
                    swapped_back.set()
                    self._wake.set()

        new.error_limit, new.on_error_limit = max_errors, swap_back
        while not self._cancel.is_set():
            self._wake.wait(0.2)
            left = deadline - time.monotonic()
            self.health.condition(
                "model",
                WARN,
                f"probation of {new.model}: {max(left, 0):.0f} s left, {new.frames} frames, {new.errors} errors",
            )
            if new.errors > max_errors:
                reason = f"{new.errors} errors in probation (detector.rollback_max_errors {max_errors})"
                break
            median = new.median_ms()
            if baseline > 0 and new.frames >= MIN_PROBATION_FRAMES and median > ratio * baseline:
                reason = (
                    f"median inference {median:.1f} ms over detector.rollback_latency_ratio {ratio:g} x "
                    f"{baseline:.1f} ms of {old.model}"
                )
                break
            if left <= 0 and new.frames >= MIN_PROBATION_FRAMES:
                break
        new.on_error_limit = None
        self._wake.clear()
        if self._cancel.is_set():
            self.health.condition("model", OK)
            return
        if reason:
            swap_back()
            self.last_outcome = f"rolled back: {new.model} -> {old.model}: {reason}"
            log.warning("model %s", self.last_outcome)
            self.health.condition("model", WARN, self.last_outcome)
            threading.Timer(ROLLBACK_NOTICE_S, self._clear_notice, args=(self.last_outcome,)).start()
            if self.on_rollback is not None:
                self.on_rollback(old.model, reason)
            return
        figures = f"{new.frames} frames, {new.errors} errors, {new.median_ms():.1f} ms"
        self.last_outcome = f"accepted: {new.model} ({figures})"
        log.info("model %s", self.last_outcome)
        self.health.condition("model", OK)
        if self.on_accepted is not None:
            self.on_accepted(new.model)

    def _clear_notice(self, outcome: str) -> None:
        if self.last_outcome == outcome and not self.busy:
            self.health.condition("model", OK)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def close(self) -> None:
        """Stop a running probation (the pipeline is closing): the model in place stays."""
        self._cancel.set()
        self._wake.set()
        self.wait(5)


def validate(model: str, detectors: Sequence[Detector], images: Sequence[NDArray[np.uint8]]) -> float:
    """Run every session of a new model on ``images`` (a blank frame when there are none): any exception or
    non-finite output raises ``ModelError`` naming the model. Returns the median inference ms (warm runs)."""
    images = list(images) or [np.zeros((480, 640, 3), dtype=np.uint8)]
    times: list[float] = []
    for detector in detectors:
        for index, image in enumerate(images):
            try:
                detections = detector.detect(image)
            except Exception as exc:  # any failure inside the backend: the model is refused, named
                failure = f"{type(exc).__name__}: {exc}"
                raise ModelError(f"detector.model {model} failed on a sample frame: {failure}") from exc
            if not (np.isfinite(detections.xyxy).all() and np.isfinite(detections.scores).all()):
                raise ModelError(f"detector.model {model} gives non-finite boxes or scores on a sample frame")
            if index:  # the first run of a session warms it up
                times.append(detector.timings.inference_ms)
    return float(np.median(times)) if times else 0.0


def _short(labels: Sequence[str]) -> str:
    return f"{list(labels[:3])}{'...' if len(labels) > 3 else ''} ({len(labels)})"
