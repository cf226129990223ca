"""``Health``: one thread-safe record of how the graph is doing, written by edges and stages as things
happen and read by publishers on a timer (``stats``, ``/diagnostics``, the run summary, exit codes).

Per stage: frames processed, fps, latency p50/p99, errors (with the last message) and its queue's depth and
drops. Per source: frames decoded/skipped and state; a live source (one with ``status()``, see
``SourceStatus``) is read at each report: connecting / streaming / stalled / reconnecting are its own states
(WARN while not streaming), with its fps, decode time, drops, reconnects and frame age. An error budget turns
a stage that keeps failing into ``failed``: ERROR on diagnostics, the graph stops, and the process exits
non-zero.

Conditions (``condition``) are what the operations side knows: a full disk, a hot device, a memory ceiling, a
stage stuck past the watchdog's deadline, the lag guard shedding frames. Each is named, has a level and a
message, and holds the report at its level until it is cleared (set to OK); a guard that acts says so here,
while it acts, so ``/diagnostics`` shows it when it happens.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


@dataclass(slots=True)
class StageHealth:
    name: str
    camera: str = ""  # "" = shared by every camera (e.g. one detector for N cameras)
    processed: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_error: str = ""
    last_error_at: float = 0.0
    dropped: int = 0
    last_drop_at: float = 0.0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    done_at: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    depth: Callable[[], int] | None = None  # live depth of the stage's input queue


@dataclass(frozen=True, slots=True)
class StageReport:
    name: str
    camera: str
    processed: int
    fps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    last_ms: float
    errors: int
    dropped: int
    queue_depth: int
    last_error: str


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What a live source reports about itself (its ``status()``), read by ``Health`` at each report."""

    state: str  # connecting | streaming | stalled | reconnecting | failed | closed
    message: str = ""
    decoded: int = 0
    skipped: int = 0
    dropped: int = 0  # decoded but replaced by a newer frame before the pipeline took it
    reconnects: int = 0  # times the stream came back after a loss
    fps: float = 0.0  # decoded frames per second, recent
    decode_ms: float = 0.0  # decode + colour conversion per frame, recent mean
    frame_age_ms: float = -1.0  # now - capture stamp of the newest frame; -1 before the first
    decoder: str = ""  # e.g. "h264 software, 1 thread" or "h264 nvdec"


SOURCE_DEGRADED = ("connecting", "stalled", "reconnecting")


@dataclass(frozen=True, slots=True)
class SourceReport:
    camera: str
    state: str  # starting | streaming | paused | ended | stopped | failed; live: SourceStatus.state
    frames_decoded: int
    frames_skipped: int
    message: str
    frames_dropped: int = 0
    reconnects: int = 0
    fps: float = 0.0
    decode_ms: float = 0.0
    frame_age_ms: float = -1.0
    decoder: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """A named, current state of the process or one camera (``camera`` "" = the whole process)."""

    name: str  # e.g. "storage", "thermal", "memory", "lag", "watchdog"
    level: int
    message: str
    camera: str = ""
    since: float = 0.0  # time.monotonic() when it took this level


@dataclass(frozen=True, slots=True)
class Report:
    """A consistent snapshot for one camera (its stages plus the shared ones), or for all (camera None)."""

    level: int
    message: str
    stages: tuple[StageReport, ...]
    sources: tuple[SourceReport, ...]
    fps: float
    latency_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    frames_processed: int
    frames_decoded: int
    frames_skipped: int
    frames_dropped: int
    errors: int
    conditions: tuple[Condition, ...] = ()


def _fps(done: deque[float]) -> float:
    if len(done) < 2:
        return 0.0
    span = done[-1] - done[0]
    return (len(done) - 1) / span if span > 0 else 0.0


class Health:
    """error_budget: consecutive failures of one stage that mark the graph failed.
    warn_hold_s: a drop or an error keeps the level at WARN (at least) for this long after it happened."""

    def __init__(self, *, error_budget: int = 10, warn_hold_s: float = 5.0) -> None:
        self.error_budget = error_budget
        self.warn_hold_s = warn_hold_s
        self._lock = threading.Lock()
        self._stages: dict[str, StageHealth] = {}
        self._sources: dict[str, dict[str, object]] = {}
        self._live: dict[str, Callable[[], SourceStatus]] = {}
        self._done: dict[str, deque[float]] = {}
        self._latency: dict[str, deque[float]] = {}
        self._processed: dict[str, int] = {}
        self.failure: str | None = None
        self.failure_code = 1  # the process's exit code when failed (fail(code=...): ops guards, core/ops)
        self._on_failure: list[Callable[[str], None]] = []
        self._observers: list[Callable[[str, float], None]] = []  # every latency recorded (metrics histograms)
        self._conditions: dict[tuple[str, str], Condition] = {}

    # -- writers -------------------------------------------------------------------------------------------

    def stage(self, name: str, camera: str = "", depth: Callable[[], int] | None = None) -> StageHealth:
        with self._lock:
            entry = self._stages.get(name)
            if entry is None:
                entry = self._stages[name] = StageHealth(name, camera)
            if depth is not None:
                entry.depth = depth
            return entry

    def record(self, name: str, ms: float) -> None:
        """A stage processed one item in ``ms``."""
        now = time.monotonic()
        with self._lock:
            entry = self._stages.get(name) or self._stages.setdefault(name, StageHealth(name))
            entry.processed += 1
            entry.consecutive_errors = 0
            entry.latencies_ms.append(ms)
            entry.done_at.append(now)
        for observe in self._observers:
            observe(name, ms)

    def on_record(self, observer: Callable[[str, float], None]) -> None:
        """Call ``observer(stage, ms)`` for every latency recorded (Prometheus histograms keep every sample;
        the report keeps the last 300)."""
        self._observers.append(observer)

    def error(self, name: str, exc: BaseException) -> bool:
        """A stage failed on one item. True when that exhausted the error budget (the graph is now failed)."""
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            entry = self._stages.get(name) or self._stages.setdefault(name, StageHealth(name))
            entry.errors += 1
            entry.consecutive_errors += 1
            entry.last_error = message
            entry.last_error_at = time.monotonic()
            exhausted = entry.consecutive_errors >= self.error_budget and self.failure is None
            if exhausted:
                self.failure = f"stage {name} failed {entry.consecutive_errors} times in a row: {message}"
        if exhausted:
            self._notify_failure()
        return exhausted

    def dropped(self, name: str, count: int = 1) -> None:
        """``count`` items dropped at the input of stage ``name`` (full queue, or rejected input)."""
        with self._lock:
            entry = self._stages.get(name) or self._stages.setdefault(name, StageHealth(name))
            entry.dropped += count
            entry.last_drop_at = time.monotonic()

    def fail(self, reason: str, code: int = 1) -> None:
        """Mark the run failed (the graph stops); ``code``: the exit code it asks for (core/ops: 3 memory, 4
        watchdog), kept from the first failure."""
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = reason
                self.failure_code = code
        if first:
            self._notify_failure()

    def condition(self, name: str, level: int, message: str = "", camera: str = "") -> None:
        """Set condition ``name`` (of ``camera``, "" = process-wide) to ``level``; OK clears it."""
        key = (name, camera)
        with self._lock:
            if level == OK:
                self._conditions.pop(key, None)
                return
            previous = self._conditions.get(key)
            since = previous.since if previous is not None and previous.level == level else time.monotonic()
            self._conditions[key] = Condition(name, level, message, camera, since)

    def conditions(self, camera: str | None = None) -> tuple[Condition, ...]:
        with self._lock:
            return tuple(c for c in self._conditions.values() if camera is None or c.camera in ("", camera))

    def on_failure(self, callback: Callable[[str], None]) -> None:
        self._on_failure.append(callback)

    def _notify_failure(self) -> None:
        assert self.failure is not None
        for callback in list(self._on_failure):
            callback(self.failure)

    def source(
        self,
        camera: str,
        *,
        state: str | None = None,
        decoded: int | None = None,
        skipped: int | None = None,
        message: str | None = None,
        status: Callable[[], SourceStatus] | None = None,
    ) -> None:
        """Record what the graph knows of ``camera``'s source; ``status``: the live source's own report."""
        with self._lock:
            if status is not None:
                self._live[camera] = status
            entry = self._sources.setdefault(camera, {"state": "starting", "decoded": 0, "skipped": 0, "message": ""})
            for key, value in (("state", state), ("decoded", decoded), ("skipped", skipped), ("message", message)):
                if value is not None:
                    entry[key] = value

    def frame_done(self, camera: str, latency_ms: float) -> None:
        """One frame made it through every stage of ``camera``; ``latency_ms`` from decode to the end."""
        now = time.monotonic()
        with self._lock:
            self._done.setdefault(camera, deque(maxlen=120)).append(now)
            self._latency.setdefault(camera, deque(maxlen=300)).append(latency_ms)
            self._processed[camera] = self._processed.get(camera, 0) + 1

    # -- readers -------------------------------------------------------------------------------------------

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def problems(self) -> str:
        """Why the run failed, one line: the stage that exhausted its error budget and every failed source
        ("" when nothing failed)."""
        return "; ".join(([self.failure] if self.failure else []) + self.source_failed())

    def source_failed(self, camera: str | None = None) -> list[str]:
        with self._lock:
            return [
                f"{cam}: {entry['message']}"
                for cam, entry in self._sources.items()
                if entry["state"] == "failed" and (camera is None or cam == camera)
            ]

    def _live_status(self, camera: str | None) -> dict[str, SourceStatus]:
        with self._lock:
            probes = {cam: probe for cam, probe in self._live.items() if camera is None or cam == camera}
        result = {}
        for cam, probe in probes.items():  # outside the lock: a probe takes its source's own
            try:
                result[cam] = probe()
            except Exception:  # a broken probe must not take the whole report down
                continue
        return result

    @staticmethod
    def _source_report(camera: str, entry: dict[str, object], live: SourceStatus | None) -> SourceReport:
        state, message = str(entry["state"]), str(entry["message"])
        decoded, skipped = int(entry["decoded"]), int(entry["skipped"])  # type: ignore[call-overload]
        if live is None:
            return SourceReport(camera, state, decoded, skipped, message)
        if state in ("starting", "streaming"):  # the graph's end states (failed, ended...) stand
            state, message = live.state, live.message
        return SourceReport(
            camera,
            state,
            max(decoded, live.decoded),
            max(skipped, live.skipped),
            message,
            frames_dropped=live.dropped,
            reconnects=live.reconnects,
            fps=live.fps,
            decode_ms=live.decode_ms,
            frame_age_ms=live.frame_age_ms,
            decoder=live.decoder,
        )

    def report(self, camera: str | None = None) -> Report:
        live = self._live_status(camera)
        now = time.monotonic()
        with self._lock:
            stages = [s for s in self._stages.values() if camera is None or s.camera in ("", camera)]
            stage_reports = tuple(self._stage_report(s) for s in stages)
            sources = tuple(
                self._source_report(cam, e, live.get(cam))
                for cam, e in self._sources.items()
                if camera is None or cam == camera
            )
            cams = [camera] if camera is not None else list(self._done)
            done = sorted(t for c in cams for t in self._done.get(c, ()))
            latencies = [v for c in cams for v in self._latency.get(c, ())]
            last_latency = self._latency[cams[0]][-1] if len(cams) == 1 and self._latency.get(cams[0]) else 0.0
            processed = sum(self._processed.get(c, 0) for c in cams)
            recent_drop = any(now - s.last_drop_at < self.warn_hold_s for s in stages if s.dropped)
            recent_error = [s for s in stages if s.errors and now - s.last_error_at < self.warn_hold_s]
            failure = self.failure
            conditions = tuple(c for c in self._conditions.values() if camera is None or c.camera in ("", camera))
        dropped = sum(s.dropped for s in stage_reports)
        errors = sum(s.errors for s in stage_reports)
        failed_sources = [s for s in sources if s.state == "failed"]
        degraded_sources = [s for s in sources if s.state in SOURCE_DEGRADED]
        fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
        worst = max((c.level for c in conditions), default=OK)
        noted = "; ".join(f"{c.name}: {c.message}" for c in conditions if c.level == worst)
        if failure is not None:
            level, message = ERROR, failure
        elif worst == ERROR:
            level, message = ERROR, noted
        elif failed_sources:
            level, message = ERROR, "; ".join(f"source {s.camera} failed: {s.message}" for s in failed_sources)
        elif worst == WARN:
            level, message = WARN, noted
        elif degraded_sources:
            level = WARN
            message = "; ".join(f"source {s.camera} {s.state}: {s.message}" for s in degraded_sources)
        elif recent_error:
            level = WARN
            message = "; ".join(f"{s.name}: {s.errors} errors, last: {s.last_error}" for s in recent_error)
        elif recent_drop:
            level, message = (
                WARN,
                f"dropping frames: {dropped} dropped so far at "
                + ", ".join(f"{s.name} {s.dropped}" for s in stage_reports if s.dropped),
            )
        elif processed == 0:
            level, message = WARN, "no frame processed yet"
        else:
            level, message = OK, f"{fps:.1f} fps"
        return Report(
            level=level,
            message=message,
            stages=stage_reports,
            sources=sources,
            fps=fps,
            latency_ms=last_latency,
            latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else 0.0,
            latency_p99_ms=float(np.percentile(latencies, 99)) if latencies else 0.0,
            frames_processed=processed,
            frames_decoded=sum(s.frames_decoded for s in sources),
            frames_skipped=sum(s.frames_skipped for s in sources),
            frames_dropped=dropped + sum(s.frames_dropped for s in sources),  # queues + live sources' newest-frame slot
            errors=errors,
            conditions=conditions,
        )

    @staticmethod
    def _stage_report(s: StageHealth) -> StageReport:
        values = list(s.latencies_ms)
        if values:
            p50, p99 = (float(v) for v in np.percentile(values, [50, 99]))
            mean, peak, last = float(np.mean(values)), float(max(values)), values[-1]
        else:
            p50 = p99 = mean = peak = last = 0.0
        return StageReport(
            name=s.name,
            camera=s.camera,
            processed=s.processed,
            fps=_fps(s.done_at),
            p50_ms=p50,
            p99_ms=p99,
            mean_ms=mean,
            max_ms=peak,
            last_ms=last,
            errors=s.errors,
            dropped=s.dropped,
            queue_depth=s.depth() if s.depth is not None else 0,
            last_error=s.last_error,
        )
