"""``edge-vision soak --minutes N [config...]``: run the pipeline (as ``edge-vision run`` does: ROS nodes, the
composed graph) on a looping source for N minutes and watch it for slow leaks and drift.

Every interval it samples the process (resident memory, open file descriptors, threads) and the pipeline (fps,
end-to-end latency p50/p99, frames, tracks the run summary holds one by one), prints a table row, and at the end
writes JSON with least-squares fits: RSS slope in MB per 10 minutes and fps drift per 10 minutes (absolute and
in % of the mean). The first 10 % of the run (model warm-up, first allocations) is left out of the fits.

The bundled video is replayed (``camera.loop``) at its own frame rate (``--rate 1.0``: what a camera delivers,
so fps is steady and drift means something; a file at rate 0 races through its first pass, then waits for real
time). A live source (stream, v4l2) is used as configured.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edge_vision.core import config

WARMUP_SHARE = 0.1  # of the run, left out of the fits


def default_interval(seconds: float) -> float:
    """About 30 samples a run, 1 s to 60 s apart."""
    return float(min(60.0, max(1.0, seconds / 30)))


def soak_sections(sections: Mapping[str, Mapping[str, Any]], rate: float, output_dir: Path) -> dict[str, Any]:
    """The config with a looping, paced file source and outputs under ``output_dir``."""
    result = {name: dict(values) for name, values in sections.items()}
    camera = result["camera"]
    if "loop" in config.plugin_keys("camera", camera):
        body = {k: v for k, v in camera.items() if k != "cameras"}
        body.update(camera.get("cameras", {}))
        body.update(loop=True, max_frames=0, rate=rate)
        result["camera"] = config.resolve("camera", body)
    result["events"]["output_dir"] = result["events"]["output_dir"] or str(output_dir)
    return result


def fit(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``times`` (per second); 0 with fewer than two points."""
    if len(times) < 2 or max(times) == min(times):
        return 0.0
    slope, _intercept = np.polyfit(np.asarray(times, float), np.asarray(values, float), 1)
    return float(slope)


def analyse(samples: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    fitted = [s for s in samples if s["t_s"] >= WARMUP_SHARE * seconds] or samples
    if len(fitted) < 2:
        fitted = samples
    times = [s["t_s"] for s in fitted]
    mean_fps = float(np.mean([s["fps"] for s in fitted])) if fitted else 0.0
    fps_slope = fit(times, [s["fps"] for s in fitted]) * 600
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    return {
        "fit_from_s": times[0] if times else 0.0,
        "fit_samples": len(fitted),
        "rss_slope_mb_per_10min": round(fit(times, [s["rss_mb"] for s in fitted]) * 600, 3),
        "fps_mean": round(mean_fps, 3),
        "fps_drift_per_10min": round(fps_slope, 4),
        "fps_drift_pct_per_10min": round(100 * fps_slope / mean_fps, 3) if mean_fps else 0.0,
        "latency_p50_drift_ms_per_10min": round(fit(times, [s["latency_p50_ms"] for s in fitted]) * 600, 4),
        "rss_mb": {"first": first.get("rss_mb"), "last": last.get("rss_mb"), "max": _max(samples, "rss_mb")},
        "open_fds": {"first": first.get("open_fds"), "last": last.get("open_fds"), "max": _max(samples, "open_fds")},
        "threads": {"first": first.get("threads"), "last": last.get("threads"), "max": _max(samples, "threads")},
    }


def _max(samples: list[dict[str, Any]], key: str) -> Any:
    return max((s[key] for s in samples), default=None)


COLUMNS = (
    ("t_s", "t [s]", "{:>8.1f}"),
    ("rss_mb", "RSS [MB]", "{:>9.1f}"),
    ("open_fds", "fds", "{:>5d}"),
    ("threads", "threads", "{:>8d}"),
    ("fps", "fps", "{:>7.2f}"),
    ("latency_p50_ms", "p50 [ms]", "{:>9.1f}"),
    ("latency_p99_ms", "p99 [ms]", "{:>9.1f}"),
    ("frames", "frames", "{:>8d}"),
    ("tracks_held", "tracks", "{:>7d}"),
    ("level", "health", " {}"),
)


def _header() -> str:
    widths = [len(fmt.format(0 if key != "level" else "")) for key, _t, fmt in COLUMNS]
    return "".join(
        title.rjust(width) if key != "level" else f" {title}"
        for (key, title, _f), width in zip(COLUMNS, widths, strict=True)
    )


def _row(sample: dict[str, Any]) -> str:
    return "".join(fmt.format(sample[key]) for key, _t, fmt in COLUMNS)


class Sampler:
    """Samples every ``interval`` s for ``seconds`` from the start of the pipeline, then asks it to stop."""

    def __init__(self, ros: Any, stop: Any, seconds: float, interval: float) -> None:
        self.ros = ros
        self.stop = stop
        self.seconds = seconds
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(self.interval + 10)

    def _run(self) -> None:
        while not self.ros.started and not self.stop.requested:  # the model loads before the first frame
            time.sleep(0.05)
        started = time.monotonic()
        print(_header(), flush=True)
        while not self.stop.requested:
            now = time.monotonic() - started
            self.samples.append(sample := self.sample(now))
            print(_row(sample), flush=True)
            if now >= self.seconds or self.ros.health.failed:
                break
            wait = min(self.interval, self.seconds - now)
            if self.stop.wait(max(wait, 0.0)):
                break
        self.stop.request("soak: done")

    def sample(self, t: float) -> dict[str, Any]:
        report = self.ros.health.report()
        pipeline = self.ros.pipeline
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            fds = self._process.num_fds()
            threads = self._process.num_threads()
        return {
            "t_s": round(t, 3),
            "rss_mb": round(rss / (1 << 20), 2),
            "open_fds": fds,
            "threads": threads,
            "fps": round(report.fps, 3),
            "latency_p50_ms": round(report.latency_p50_ms, 3),
            "latency_p99_ms": round(report.latency_p99_ms, 3),
            "frames": report.frames_processed,
            "tracks_held": pipeline.summary.tracks_held if pipeline is not None else 0,
            "level": ("OK", "WARN", "ERROR")[report.level],
        }


def run_soak(
    sections: Mapping[str, Mapping[str, Any]],
    *,
    minutes: float,
    interval: float | None,
    rate: float,
    json_path: str,
    output_dir: str,
) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    from edge_vision.core.actions.atomic import publish, temp_path
    from edge_vision.ros.container import RosPipeline, StopSignals, failure_line

    seconds = minutes * 60.0
    interval = interval or default_interval(seconds)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    prepared = soak_sections(sections, rate, out)
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals()  # Ctrl+C / SIGTERM: stop early, still write the JSON of what was sampled
    stop.install()
    ros: RosPipeline | None = None
    try:
        ros = RosPipeline(sections=prepared, context=context)
        sampler = Sampler(ros, stop, seconds, interval)
        sampler.start()
        code = ros.run(stop)
        sampler.join()
        samples = sampler.samples
        result = {
            "minutes": minutes,
            "interval_s": interval,
            "rate": rate,
            "device_id": config.device_id(prepared),
            "exit_code": code,
            "stopped_by": stop.requested,
            "health": ros.health.report().message,
            **analyse(samples, seconds),
            "summary": ros.pipeline.summary.to_dict() if ros.pipeline is not None else {},
            "samples": samples,
        }
        target = Path(json_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temp_path(target)  # written whole, then renamed: the project's one way (actions/atomic.py)
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        publish(temporary, target)
        print(
            f"soak: {len(samples)} samples over {samples[-1]['t_s'] if samples else 0:.0f} s; "
            f"RSS slope {result['rss_slope_mb_per_10min']:+.2f} MB/10 min, "
            f"fps {result['fps_mean']:.2f} drifting {result['fps_drift_pct_per_10min']:+.2f} %/10 min, "
            f"fds {result['open_fds']['first']} -> {result['open_fds']['last']}, "
            f"threads {result['threads']['first']} -> {result['threads']['last']}\nwritten: {target}",
            flush=True,
        )
        if code and (line := failure_line(ros)):
            print(f"edge-vision: error: {line}", file=sys.stderr)
        return code
    finally:
        if ros is not None:
            ros.destroy()
        stop.restore()
        if context.ok():
            rclpy.shutdown(context=context)
