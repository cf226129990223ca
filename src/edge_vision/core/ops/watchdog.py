"""Two watchdogs: one inside the process, one for the service manager.

- ``StuckWatchdog``: a stage that has held one item longer than ``pipeline.watchdog_s`` (the graph records when
  a stage's worker took it) is an ERROR condition on /diagnostics, "watchdog: detect stuck 12.3 s on frame 40",
  for as long as it is stuck. ``pipeline.watchdog_action: exit`` also fails the run with exit code 4
  (``EXIT_WATCHDOG``), so the supervisor restarts the process.
- ``ServiceWatchdog``: systemd's (``sdnotify``). READY=1 once the first frame is through, STATUS= with the health
  line, and WATCHDOG=1 only while frames flow: a hung decoder or a stuck inference sends no ping, and systemd
  kills and restarts the process after ``WatchdogSec``. Also pinged while the pipeline is rightly waiting: paused
  (lifecycle), a live camera reconnecting (its own supervisor is at work, WARN on /diagnostics), sources ended
  (draining), or fed from topics with no stage holding an item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_vision.core.ops.sdnotify import SdNotify
from edge_vision.core.runtime.graph import Graph
from edge_vision.core.runtime.health import ERROR, LEVEL_NAMES, OK, SOURCE_DEGRADED, Health, Report

log = logging.getLogger(__name__)

EXIT_WATCHDOG = 4  # a stage was stuck past pipeline.watchdog_s with watchdog_action: exit
WAITING = (*SOURCE_DEGRADED, "paused", "ended", "stopped")  # source states in which no frame is no fault


class StuckWatchdog:
    def __init__(
        self,
        graph: Graph,
        health: Health,
        limit_s: float,
        action: str,
        camera_of: Callable[[str], str | None],
        exit_code: int = EXIT_WATCHDOG,
    ) -> None:
        self.graph = graph
        self.health = health
        self.limit_s = limit_s
        self.action = action
        self.camera_of = camera_of
        self.exit_code = exit_code
        self._flagged: set[str] = set()  # cameras with a watchdog condition set
        self._logged: set[tuple[str, int]] = set()

    def check(self, now: float) -> list[str]:
        """One look at what every stage holds; returns the messages of the stuck ones."""
        stuck: dict[str, list[str]] = {}
        keys = set()
        for stage, since, camera_id, sequence in self.graph.busy():
            held = now - since
            if held <= self.limit_s:
                continue
            camera = self.camera_of(camera_id) or ""
            stuck.setdefault(camera, []).append(f"{stage} stuck {held:.1f} s on frame {sequence}")
            keys.add((stage, sequence))
        for stage, sequence in keys - self._logged:  # once per stuck item, not once per check
            log.error("watchdog: %s stuck over %.1f s on frame %d", stage, self.limit_s, sequence)
        for camera, messages in stuck.items():
            message = "; ".join(messages)
            self.health.condition("watchdog", ERROR, message, camera=camera)
            if self.action == "exit":
                self.health.fail(f"watchdog: {message}", code=self.exit_code)
        self._logged = keys
        for camera in self._flagged - set(stuck):
            self.health.condition("watchdog", OK, camera=camera)
        self._flagged = set(stuck)
        return [m for messages in stuck.values() for m in messages]


class ServiceWatchdog:
    def __init__(self, notifier: SdNotify, graph: Graph, health: Health) -> None:
        self.sd = notifier
        self.graph = graph
        self.health = health
        self.pings = 0
        self._last_ping = self._last_status = float("-inf")
        self._last_frames = 0

    def tick(self, now: float, report: Report) -> None:
        """WATCHDOG=1 as soon as a ping is due and the pipeline is alive (retried every tick until it is);
        STATUS= with the health line at least every ping interval (5 s without a watchdog), alive or not."""
        if not self.sd.enabled:
            return
        status = f"STATUS={LEVEL_NAMES[report.level]}: {report.message}"[:200]
        if report.frames_processed > 0 or not self.graph.sources:
            self.sd.send_ready(status.removeprefix("STATUS="))
        interval = self.sd.ping_interval
        if interval and now - self._last_ping >= interval and self.alive(now, report):
            self._last_ping = self._last_status = now
            self._last_frames = report.frames_processed
            self.pings += 1
            self.sd.notify("WATCHDOG=1", status)
        elif now - self._last_status >= (interval or 5.0):
            self._last_status = now
            self.sd.notify(status)

    def alive(self, now: float, report: Report) -> bool:
        """Frames flow, or the pipeline is rightly waiting (see the module docstring)."""
        if self.health.failed:
            return False
        if report.frames_processed > self._last_frames or self.graph.paused:
            return True
        held = [since for _stage, since, _c, _s in self.graph.busy()]
        if any(now - since > self.sd.ping_interval for since in held):
            return False  # a stage has held one item since before the last ping
        if not self.graph.sources:
            return True  # fed from topics, nothing to do
        return bool(report.sources) and all(s.state in WAITING for s in report.sources)
