"""Prometheus metrics (``prometheus-client``) and ``/healthz`` on ``pipeline.metrics_host:metrics_port``.

``/metrics``: every family carries ``device`` (``pipeline.device_id``, default the host name). Per-stage latency
is a real histogram (every sample observed as it is recorded, cumulative buckets); everything else is read from
``Health`` and the guards at scrape time, so a scrape costs the pipeline nothing between scrapes.
``/healthz``: 200 with "OK: ..." or "WARN: ...", 503 with "ERROR: ..." (docker HEALTHCHECK, load balancers).

Bound to 127.0.0.1 by default: the endpoint has no authentication; expose it through the host's firewall or a
reverse proxy, or set ``metrics_host: 0.0.0.0`` on a trusted network.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge_vision.core.errors import ConfigError
from edge_vision.core.runtime.health import ERROR, LEVEL_NAMES, Health

log = logging.getLogger(__name__)

# Seconds. From a 1 ms tracker step to a multi-second stall; 2.5x apart, so p50/p99 read within one bucket.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Snapshot:
    """What the guards measured last (read at scrape time)."""

    temperatures: dict[str, float] = field(default_factory=dict)
    rss_bytes: int = 0
    open_fds: int = 0
    threads: int = 0
    disk_free: dict[str, int] = field(default_factory=dict)
    frame_age_s: dict[str, float] = field(default_factory=dict)  # camera id -> age when its last frame was done
    shed_factor: int = 1


class _Collector:
    def __init__(self, health: Health, device: str, cameras: dict[str, str], snapshot: Callable[[], Snapshot]):
        self.health = health
        self.device = device
        self.cameras = cameras  # camera name -> camera id
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        device = self.device
        report = self.health.report()
        snap = self.snapshot()

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"edge_vision_{name}", doc, labels=["device", *labels])

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(f"edge_vision_{name}", doc, labels=["device", *labels])

        fps = gauge("fps", "frames per second through the whole pipeline, recent", ["camera"])
        frames = counter("frames_processed", "frames through every stage", ["camera"])
        level = gauge("health_level", "0 OK, 1 WARN, 2 ERROR (as on /diagnostics)", ["camera"])
        for name, camera_id in self.cameras.items():
            per_camera = self.health.report(name if len(self.cameras) > 1 else None)
            fps.add_metric([device, camera_id], per_camera.fps)
            frames.add_metric([device, camera_id], per_camera.frames_processed)
            level.add_metric([device, camera_id], per_camera.level)
        yield from (fps, frames, level)

        processed = counter("stage_processed", "items a stage processed", ["stage"])
        drops = counter("drops", "items dropped at a stage's input (full queue, lag guard, load shedding)", ["stage"])
        errors = counter("errors", "items a stage failed on", ["stage"])
        depth = gauge("queue_depth", "items waiting in front of a stage", ["stage"])
        for stage in report.stages:
            processed.add_metric([device, stage.name], stage.processed)
            drops.add_metric([device, stage.name], stage.dropped)
            errors.add_metric([device, stage.name], stage.errors)
            depth.add_metric([device, stage.name], stage.queue_depth)
        yield from (processed, drops, errors, depth)

        reconnects = counter("reconnects", "times a live source came back after a loss", ["camera"])
        source_drops = counter("source_dropped", "frames a live source replaced before they were taken", ["camera"])
        source_state = gauge("source_state", "1 for the source's current state", ["camera", "state"])
        decoded = counter("frames_decoded", "frames the source decoded", ["camera"])
        for source in report.sources:
            camera_id = self.cameras.get(source.camera, source.camera)
            reconnects.add_metric([device, camera_id], source.reconnects)
            source_drops.add_metric([device, camera_id], source.frames_dropped)
            source_state.add_metric([device, camera_id, source.state], 1)
            decoded.add_metric([device, camera_id], source.frames_decoded)
        yield from (reconnects, source_drops, source_state, decoded)

        age = gauge("frame_age_seconds", "now - capture stamp of the last frame through the pipeline", ["camera"])
        for camera_id, seconds in snap.frame_age_s.items():
            age.add_metric([device, camera_id], seconds)
        temperature = gauge("temperature_celsius", "thermal zones (and tegrastats sensors)", ["zone"])
        for zone, celsius in snap.temperatures.items():
            temperature.add_metric([device, zone], celsius)
        disk = gauge("disk_free_bytes", "free space of the output folder's file system", ["path"])
        for path, free in snap.disk_free.items():
            disk.add_metric([device, path], free)
        yield from (age, temperature, disk)
        for name, doc, value in (
            ("resident_memory_bytes", "resident set size of the process", snap.rss_bytes),
            ("open_fds", "open file descriptors of the process", snap.open_fds),
            ("threads", "threads of the process", snap.threads),
            ("shed_factor", "load shedding: 1 of this many frames reaches the detector", snap.shed_factor),
        ):
            family = gauge(name, doc)
            family.add_metric([device], value)
            yield family

        # No message label: it changes with every reading ("stuck 12.3 s"), one series each; /healthz has it.
        conditions = gauge(
            "condition",
            "a Health condition in force (storage, thermal, memory, lag, watchdog): its level, 1 WARN, 2 ERROR",
            ["name", "camera", "level"],
        )
        for c in report.conditions:
            camera_id = self.cameras.get(c.camera, c.camera)
            conditions.add_metric([device, c.name, camera_id, LEVEL_NAMES[c.level]], c.level)
        yield conditions


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close joins request threads: nothing outlives close()


class _QuietHandler(WSGIRequestHandler):
    timeout = 5.0  # a client that never finishes its request does not hold a thread

    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a log line
        pass


class MetricsServer:
    def __init__(
        self,
        health: Health,
        *,
        host: str,
        port: int,
        device: str,
        cameras: dict[str, str],
        snapshot: Callable[[], Snapshot],
    ) -> None:
        self.health = health
        self.device = device
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(health, device, cameras, snapshot))
        self.latency = Histogram(
            "edge_vision_stage_latency_seconds",
            "time a stage took per item (detect.* : the detector's parts)",
            ["device", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[str, Any] = {}
        health.on_record(self._observe)
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                return self._healthz(start_response)
            if path in ("/", "/metrics"):
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics and /healthz are served here\n"]

        try:
            self.server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        except (OSError, socket.gaierror) as exc:
            raise ConfigError(f"pipeline.metrics_port {port}: cannot listen on {host}:{port}: {exc}") from exc
        self.host, self.port = host, self.server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _observe(self, stage: str, ms: float) -> None:
        if self._thread is None:  # closed (Health outlives a pipeline: lifecycle cleanup, configure)
            return
        child = self._children.get(stage)
        if child is None:
            child = self._children[stage] = self.latency.labels(self.device, stage)
        child.observe(ms / 1e3)

    def _healthz(self, start_response: Callable[..., Any]) -> list[bytes]:
        report = self.health.report()
        status = "503 Service Unavailable" if report.level >= ERROR else "200 OK"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [f"{LEVEL_NAMES[report.level]}: {report.message}\n".encode()]

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.server.serve_forever, name="ev-metrics", daemon=True)
            self._thread.start()
            log.info("metrics on %s/metrics, health on %s/healthz", self.url, self.url)

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server.server_close()
