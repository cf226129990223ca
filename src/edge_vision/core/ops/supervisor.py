"""``Supervisor``: the operations side of one ``Pipeline`` on one thread (``ev-ops``), started and stopped with it.

Every ``TICK`` it looks for stuck stages (``StuckWatchdog``) and talks to systemd (``ServiceWatchdog``); every
``pipeline.guard_period_s`` it reads memory, temperatures and disk (``MemoryGuard``, ``ThermalGuard``), which set
the load shedding factor. The lag guard and the shedder are screens on the detector's input, installed here. The
metrics endpoint (``pipeline.metrics_port``) reads what the guards measured last.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from edge_vision.core import config
from edge_vision.core.ops import sdnotify
from edge_vision.core.ops.guards import LagGuard, LoadShedder, MemoryGuard, ThermalGuard, ThermalSensors
from edge_vision.core.ops.metrics import MetricsServer, Snapshot
from edge_vision.core.ops.watchdog import ServiceWatchdog, StuckWatchdog
from edge_vision.core.runtime.graph import Graph
from edge_vision.core.runtime.health import Health

log = logging.getLogger(__name__)

# The watchdog and systemd look 4x a second: a stall is reported within 0.25 s of passing watchdog_s, and a
# ping is never more than 0.25 s late (WatchdogSec >= 1 s). One report() per tick: ~0.1 ms.
TICK = 0.25


class Supervisor:
    def __init__(
        self,
        graph: Graph,
        health: Health,
        values: Mapping[str, Any],
        *,
        clock: Callable[[], int],
        camera_of: Callable[[str], str | None],
        cameras: Mapping[str, str],
        output_dir: str,
        detect: str | None,
    ) -> None:
        """values: the resolved ``pipeline`` section. cameras: camera name -> camera id. detect: the detector's
        stage name when it runs here (the shedding and lag screens go on its input)."""
        self.graph = graph
        self.health = health
        self.clock = clock
        self.camera_of = camera_of
        self.output_dir = output_dir or "."
        self.guard_period = values["guard_period_s"]
        self.shedder = LoadShedder(health, values["shed_max"], camera_of)
        self.lag: LagGuard | None = None
        if detect is not None:
            graph.screen(detect, self.shedder)
            if values["max_lag_s"] > 0:
                self.lag = LagGuard(graph, health, values["max_lag_s"], clock, camera_of, detect)
                graph.screen(detect, self.lag)
        limit_mb = values["memory_limit_mb"]
        self.memory = MemoryGuard(health, self.shedder, limit_mb) if limit_mb else None
        self.thermal = ThermalGuard(
            health,
            self.shedder,
            ThermalSensors(values["thermal_path"]),
            values["thermal_warn_c"],
            values["thermal_hysteresis_c"],
        )
        self.watchdog = (
            StuckWatchdog(graph, health, values["watchdog_s"], values["watchdog_action"], camera_of)
            if values["watchdog_s"] > 0
            else None
        )
        self.service = ServiceWatchdog(sdnotify.notifier(), graph, health)
        self.device = config.device_id({"pipeline": values})
        self._process = psutil.Process()
        self._snapshot = Snapshot()
        self._frame_age: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_once: set[str] = set()
        self.metrics: MetricsServer | None = None
        if values["metrics_port"]:  # bound now: a port in use is a start-up error (exit code 2), not a log line
            self.metrics = MetricsServer(
                health,
                host=values["metrics_host"],
                port=values["metrics_port"],
                device=self.device,
                cameras=dict(cameras),
                snapshot=self.snapshot,
            )

    # -- hooks from the pipeline ---------------------------------------------------------------------------

    def frame_done(self, camera_id: str, stamp_ns: int) -> None:
        self._frame_age[camera_id] = (self.clock() - stamp_ns) / 1e9

    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        snap.frame_age_s = dict(self._frame_age)
        snap.shed_factor = self.shedder.factor
        return snap

    # -- running -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.thermal.sensors.start()
        if self.metrics is not None:
            self.metrics.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ev-ops", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.metrics is not None:
            self.metrics.close()
        self.thermal.sensors.close()

    def _loop(self) -> None:
        next_guard = 0.0
        while True:
            now = time.monotonic()
            if now >= next_guard:
                next_guard = now + self.guard_period
                self._guarded("guards", self.check_resources)
            self._guarded("watchdog", functools.partial(self.tick, now))
            if self._stop.wait(TICK):
                return

    def _guarded(self, what: str, step: Callable[[], Any]) -> None:
        """The ops thread never dies of one failed look; each kind of failure is logged once."""
        try:
            step()
        except Exception:
            if what not in self._failed_once:
                self._failed_once.add(what)
                log.exception("ops: %s check failed", what)

    def tick(self, now: float) -> None:
        if self.watchdog is not None:
            self.watchdog.check(now)
        if self.service.sd.enabled:
            self.service.tick(now, self.health.report())

    def check_resources(self) -> None:
        snap = self._snapshot
        if self.memory is not None:
            snap.rss_bytes = self.memory.check()
        else:
            snap.rss_bytes = int(self._process.memory_info().rss)
        snap.temperatures = self.thermal.check()
        if self.metrics is not None:
            snap.open_fds = self._process.num_fds()
            snap.threads = self._process.num_threads()
            folder = Path(self.output_dir)
            try:
                snap.disk_free = {str(folder.resolve()): shutil.disk_usage(folder).free}
            except OSError:  # not created yet
                snap.disk_free = {}
