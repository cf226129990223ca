"""The capture section of ``edge-vision bench``: what live capture costs and how fast it is.

- Software H.264 decode fps at 720p and 1080p for several thread settings (clips made with PyAV from the sample
  video, scaled; one slice per frame and no B-frames, as cameras send), decode alone and decode + BGR.
- The RTSP source on a real RTSP server at 30 fps (GStreamer's, started from the repository's
  ``test/rtsp_server.py``): the time from each frame's capture stamp to its detections (p50 / p99), with the
  pipeline's configured queueing and with the live setting (queue of 1, drop the oldest).
- The reconnect time after the server comes back (from its READY to the first frame), with the source's
  default backoff.

Numbers on a shared 2-core VM drift between runs: compare within one run.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_vision.core import assets, config

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO / "test" / "rtsp_server.py"
THREAD_SETTINGS = ((1, "slice"), (2, "frame"), (2, "slice"), (3, "frame"), (0, "auto"))
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def _server_module() -> ModuleType:
    if not SERVER_SCRIPT.is_file():
        raise FileNotFoundError(f"the RTSP part needs the repository checkout's {SERVER_SCRIPT}")
    spec = importlib.util.spec_from_file_location("edge_vision_rtsp_server", SERVER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_clip(video: Path, out: Path, width: int, height: int, frames: int = 300) -> Path:
    """An MP4 of ``frames`` frames at 30 fps: x264 veryfast, high profile, GOP 60 (2 s), no B-frames, one
    slice per frame (frame-threaded encoder: PyAV's default slice threading would cut frames in slices, which
    flatters slice-threaded decoding and is not what cameras send)."""
    import av

    if out.is_file():
        return out
    partial = out.with_suffix(".part.mp4")
    with av.open(str(video)) as source, av.open(str(partial), "w") as sink:
        stream: Any = sink.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "profile": "high", "g": "60", "bf": "0"}
        stream.codec_context.thread_type = "FRAME"
        written = 0
        while written < frames:
            source.seek(0)
            for frame in source.decode(video=0):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = written, Fraction(1, 30)
                sink.mux(stream.encode(scaled))
                written += 1
                if written >= frames:
                    break
        sink.mux(stream.encode(None))
    partial.rename(out)
    return out


def decode_fps(clip: Path, threads: int, thread_type: str, *, bgr: bool) -> float:
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = thread_type.upper()
        stream.codec_context.thread_count = threads
        t0 = time.perf_counter()
        count = 0
        for frame in container.decode(stream):
            if bgr:
                frame.to_ndarray(format="bgr24")
            count += 1
        return count / (time.perf_counter() - t0)


def measure_decode(video: Path, cache: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, (width, height) in SIZES.items():
        clip = make_clip(video, cache / f"vtest_{name}_30fps.mp4", width, height)
        rows: list[dict[str, Any]] = [
            {"threads": threads, "thread_type": thread_type, "decode_fps": 0.0}
            for threads, thread_type in THREAD_SETTINGS
        ]
        # Best of three passes, the settings interleaved: on a shared 2-core VM one pass of one setting can lose
        # half its speed to a neighbour (measured: 1080p single-thread 266..408 fps across passes).
        for _ in range(3):
            for row in rows:
                fps = decode_fps(clip, row["threads"], row["thread_type"], bgr=False)
                row["decode_fps"] = max(row["decode_fps"], fps)
        best = max(rows, key=lambda r: r["decode_fps"])
        for row in {id(best): best, id(rows[0]): rows[0]}.values():
            row["decode_bgr_fps"] = max(
                decode_fps(clip, row["threads"], row["thread_type"], bgr=True) for _ in range(2)
            )
        result[name] = {"size": f"{width}x{height}", "settings": rows, "best": best}
    return result


def _live_sections(sections: Mapping[str, Mapping[str, Any]], url: str, live_queue: bool) -> dict[str, Any]:
    run: dict[str, Any] = {k: dict(v) for k, v in sections.items()}
    camera_id = sections["camera"]["camera_id"]
    run["camera"] = config.resolve("camera", {"source": "stream", "uri": url, "camera_id": camera_id})
    run["pipeline"]["cameras"] = []
    if live_queue:
        run["pipeline"].update(queue_size=1, policy="drop_oldest")
    run["events"]["actions"] = {}
    run["visualizer"]["video_path"] = ""
    return run


def measure_latency(
    sections: Mapping[str, Mapping[str, Any]], url: str, seconds: float, *, live_queue: bool
) -> dict[str, Any]:
    """Capture stamp -> detections, over ``seconds`` of a 30 fps RTSP stream."""
    from edge_vision.core.runtime.build import Pipeline

    pipeline = Pipeline(_live_sections(sections, url, live_queue), stages=("source", "detect"))
    latencies: list[float] = []
    lock = threading.Lock()

    def on_detections(packet: Any) -> None:
        with lock:
            latencies.append((time.time_ns() - packet.meta.stamp_ns) / 1e6)

    pipeline.graph.tap("detect", on_detections)
    pipeline.start()
    try:
        deadline = time.monotonic() + 15
        while not latencies and time.monotonic() < deadline:
            time.sleep(0.05)
        with lock:
            latencies.clear()  # from the first detections on: no start-up in the figures
        time.sleep(seconds)
        report = pipeline.health.report()
    finally:
        pipeline.close()
    with lock:
        values = list(latencies)
    source = report.sources[0] if report.sources else None
    queue = sections["pipeline"]
    return {
        "queue": "1, drop_oldest" if live_queue else f"{queue['queue_size']}, {queue['policy']}",
        "frames": len(values),
        "detections_fps": len(values) / seconds,
        "p50_ms": float(np.percentile(values, 50)) if values else 0.0,
        "p99_ms": float(np.percentile(values, 99)) if values else 0.0,
        "source_fps": source.fps if source else 0.0,
        "source_decode_ms": source.decode_ms if source else 0.0,
        "source_dropped": source.frames_dropped if source else 0,
    }


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"capture bench: no {what} within {timeout:.0f} s")
        time.sleep(0.002)


def measure_reconnect(server: Any, outage_s: float, rounds: int) -> dict[str, Any]:
    """Kill the server, restart it after ``outage_s``, time READY -> first frame (default backoff)."""
    from edge_vision.core import plugins

    source: Any = plugins.build("sources", "stream", {"uri": server.url}, where="camera")
    frames = [0]
    consumer = threading.Thread(target=lambda: frames.__setitem__(0, sum(1 for _ in source.frames())))
    times, connects = [], []
    try:
        consumer.start()
        for _ in range(rounds):
            _wait(lambda start=source.frames_decoded: source.frames_decoded >= start + 30, 20, "frames")
            server.kill()
            time.sleep(outage_s)
            server.start()
            back = time.monotonic()
            _wait(lambda seen=source.frames_decoded: source.frames_decoded > seen, 30, "frames after the restart")
            times.append(time.monotonic() - back)
            connects.append(source.last_connect_s)
    finally:
        source.close()
        consumer.join(5)
    return {
        "outage_s": outage_s,
        "rounds": rounds,
        "ready_to_frame_s": times,
        "median_s": statistics.median(times),
        "connect_to_frame_s": connects,
        "backoff": "0.5 s doubling to 10 s, +-20 % jitter (defaults)",
    }


def measure(sections: Mapping[str, Mapping[str, Any]], *, seconds: float = 10.0) -> dict[str, Any]:
    video = assets.find(assets.DEFAULT_VIDEO)
    cache = Path(tempfile.gettempdir()) / "edge_vision_bench_clips"
    cache.mkdir(exist_ok=True)
    result: dict[str, Any] = {"decode": measure_decode(video, cache)}
    try:
        server_module = _server_module()
        units = server_module.make_h264_units(video, cache / "vtest_576p_30fps.h264units", frames=300, gop=30)
        with server_module.ServerProcess("rtsp", units, fps=30.0) as server:
            result["rtsp_latency"] = [
                measure_latency(sections, server.url, seconds, live_queue=False),
                measure_latency(sections, server.url, seconds, live_queue=True),
            ]
            result["reconnect"] = measure_reconnect(server, outage_s=3.0, rounds=3)
    except (OSError, RuntimeError) as exc:  # no GStreamer RTSP server here: say so, keep the decode figures
        result["rtsp_error"] = str(exc)
    return result


def format_table(result: Mapping[str, Any]) -> str:
    lines = ["Capture: software H.264 decode (fps; clips from vtest.avi, 30 fps, 1 slice/frame, no B-frames)"]
    for name, entry in result["decode"].items():
        settings = "  ".join(f"{r['threads']}x{r['thread_type']} {r['decode_fps']:.0f}" for r in entry["settings"])
        best = entry["best"]
        lines.append(f"  {name} {entry['size']:<10} {settings}")
        lines.append(
            f"  {'':16}best {best['threads']}x{best['thread_type']}: {best['decode_fps']:.0f} fps decode, "
            f"{best['decode_bgr_fps']:.0f} fps decode+BGR (1 thread: {entry['settings'][0]['decode_bgr_fps']:.0f})"
        )
    if "rtsp_error" in result:
        lines.append(f"RTSP source: not measured: {result['rtsp_error']}")
        return "\n".join(lines)
    lines.append("RTSP source at 30 fps (768x576), capture stamp -> detections")
    for row in result["rtsp_latency"]:
        lines.append(
            f"  queue {row['queue']:<14} p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  "
            f"detections {row['detections_fps']:5.1f} fps  capture {row['source_fps']:5.1f} fps "
            f"(decode {row['source_decode_ms']:.1f} ms/frame, {row['source_dropped']} older frames dropped)"
        )
    reconnect = result["reconnect"]
    lines.append(
        f"Reconnect after a {reconnect['outage_s']:.0f} s outage: server READY -> first frame median "
        f"{reconnect['median_s']:.2f} s ({', '.join(f'{t:.2f}' for t in reconnect['ready_to_frame_s'])}); "
        f"connection set-up {statistics.median(reconnect['connect_to_frame_s']):.2f} s; {reconnect['backoff']}"
    )
    return "\n".join(lines)
