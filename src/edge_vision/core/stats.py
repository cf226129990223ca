"""Per-stage latency and frame counters: the latency budget a deployer reads on the stats topic."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StageSummary:
    name: str
    last_ms: float
    mean_ms: float
    max_ms: float
    count: int


class PipelineStatistics:
    """Thread-safe rolling window of stage latencies plus frame counters."""

    def __init__(self, window: int = 300) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._stages: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}
        self._done: deque[float] = deque(maxlen=window)
        self.frames_decoded = 0  # set by the source stage
        self.frames_skipped = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.latency_ms: deque[float] = deque(maxlen=window)

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._stages.setdefault(stage, deque(maxlen=self._window)).append(ms)
            self._counts[stage] = self._counts.get(stage, 0) + 1

    def add_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.add(stage, ms)

    def frame_done(self, latency_ms: float) -> None:
        with self._lock:
            self.frames_processed += 1
            self._done.append(time.perf_counter())
            self.latency_ms.append(latency_ms)

    def dropped(self, count: int = 1) -> None:
        with self._lock:
            self.frames_dropped += count

    @property
    def fps(self) -> float:
        with self._lock:
            if len(self._done) < 2:
                return 0.0
            span = self._done[-1] - self._done[0]
            return (len(self._done) - 1) / span if span > 0 else 0.0

    def summary(self) -> list[StageSummary]:
        with self._lock:
            return [
                StageSummary(name, values[-1], sum(values) / len(values), max(values), self._counts[name])
                for name, values in self._stages.items()
                if values
            ]
