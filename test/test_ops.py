"""Running unattended (core/ops): systemd's notify protocol and watchdog on a real AF_UNIX datagram socket with
real ``edge-vision run`` processes, the stuck-stage watchdog, the memory / thermal / lag guards and their one
load-shedding place on the real pipeline (real video and model; real memory, fake thermal zone files and a fake
tegrastats), the Prometheus endpoint scraped over HTTP on 127.0.0.1, ``edge-vision soak``, and the run
summary's bounded memory."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import CONFIG, LABELS, REPO, cli
from edge_vision.core import config
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.ops import EXIT_MEMORY, EXIT_WATCHDOG
from edge_vision.core.ops.guards import ThermalSensors, parse_tegrastats
from edge_vision.core.ops.sdnotify import SdNotify
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime import Pipeline
from edge_vision.core.runtime.health import ERROR, WARN
from edge_vision.core.summary import RunSummary

MB = 1 << 20


# -- helpers ------------------------------------------------------------------------------------------------


def sections(tmp_path: Path, *, loop: bool = True, rate: float = 0.0, **pipeline: Any) -> dict[str, Any]:
    """The bundled config on the sample video (looping: it runs until stopped), outputs under tmp_path."""
    loaded = config.load_file(CONFIG)
    camera = {k: v for k, v in loaded["camera"].items() if k != "cameras"}
    loaded["camera"] = config.resolve("camera", {**camera, "loop": loop, "rate": rate})
    loaded["detector"]["labels"] = str(LABELS)
    loaded["events"]["output_dir"] = str(tmp_path)
    loaded["pipeline"] = config.resolve("pipeline", {**loaded["pipeline"], **pipeline})
    return loaded


@pytest.fixture()
def pipelines() -> Iterator[Callable[[dict[str, Any]], Pipeline]]:
    """Pipelines made here are closed at the end and leave no ev- thread (the ops thread, metrics, tegrastats)."""
    made: list[Pipeline] = []

    def make(values: dict[str, Any]) -> Pipeline:
        pipeline = Pipeline(values)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()
    assert [t.name for t in threading.enumerate() if t.name.startswith("ev-")] == []


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"not within {timeout:.0f} s: {what}")


def condition(pipeline: Pipeline, name: str) -> Any:
    return next((c for c in pipeline.health.conditions() if c.name == name), None)


def dropped(pipeline: Pipeline, stage: str) -> int:
    return next((s.dropped for s in pipeline.health.report().stages if s.name == stage), 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def layer(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class NotifySocket:
    """A real AF_UNIX datagram socket, as systemd's $NOTIFY_SOCKET; every datagram kept with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.time(), data.decode().split("\n")))

    def times(self, line: str) -> list[float]:
        return [t for t, lines in self.messages if line in lines]

    def statuses(self) -> list[str]:
        return [line for _t, lines in self.messages for line in lines if line.startswith("STATUS=")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# A stage that stalls: ByteTrack, stuck for STALL_S on frame STALL_AT, in a real `edge-vision run` process. The
# times go to a file, for the test to compare with the datagrams' arrival times.
STALLING_RUN = """
import json, sys, time
from edge_vision.core import plugins
from edge_vision.core.tracking.bytetrack import ByteTrack

marker, stall_at, stall_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

class StallingTracker(ByteTrack):
    def update(self, detections, meta):
        if meta.sequence == stall_at:
            started = time.time()
            time.sleep(stall_s)
            with open(marker, "w") as f:
                json.dump({"start": started, "end": time.time()}, f)
        return super().update(detections, meta)

plugins.register("trackers", "stalling", StallingTracker)
from edge_vision.cli import main
main(sys.argv[4:])
"""


def stalling_run(marker: Path, stall_at: int, stall_s: float, *args: str) -> list[str]:
    return [sys.executable, "-c", STALLING_RUN, str(marker), str(stall_at), str(stall_s), "run", *args]


def run_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    return env | extra


# -- systemd: sd_notify and its watchdog -----------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_systemd_gets_ready_watchdog_status_and_stopping(tmp_path: Path, abstract: bool) -> None:
    address = f"@edge-vision-test-{os.getpid()}-{time.monotonic_ns()}" if abstract else str(tmp_path / "notify")
    notify = NotifySocket(address)
    try:
        result = subprocess.run(
            cli("run", str(CONFIG), "--max-frames", "40", "--output-dir", str(tmp_path / "out")),
            env=run_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        time.sleep(0.3)
    finally:
        notify.close()
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for _t, group in notify.messages for line in group]
    assert lines.count("READY=1") == 1 and lines.count("STOPPING=1") == 1, lines
    assert lines.index("READY=1") < lines.index("WATCHDOG=1") < lines.index("STOPPING=1")
    # The first frame went through before READY=1: its status already counts it.
    ready = next(group for _t, group in notify.messages if "READY=1" in group)
    assert any(line.startswith("STATUS=") for line in ready)
    assert any("fps" in status for status in notify.statuses()), notify.statuses()


def test_watchdog_pings_stop_while_a_stage_is_stuck_and_status_names_it(tmp_path: Path) -> None:
    """WatchdogSec=1 s (pings every 0.5 s): a tracker stuck 4 s on frame 20 gets no ping for as long as it is stuck
    (systemd would restart the process), the in-process watchdog (watchdog_s 1.0) names it in STATUS=, and pings
    come back once frames flow again."""
    notify = NotifySocket(str(tmp_path / "notify"))
    marker = tmp_path / "stall.json"
    settings = layer(
        tmp_path,
        "stall.yaml",
        """
        /**/tracker:
          ros__parameters:
            tracker: stalling
        /**/pipeline:
          ros__parameters:
            watchdog_s: 1.0
        """,
    )
    try:
        result = subprocess.run(
            stalling_run(
                marker,
                20,
                4.0,
                str(CONFIG),
                str(settings),
                "--max-frames",
                "100",
                "--output-dir",
                str(tmp_path / "out"),
            ),
            env=run_env(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="1000000"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        time.sleep(0.3)
    finally:
        notify.close()
    assert result.returncode == 0, result.stderr[-2000:]
    stall = json.loads(marker.read_text())
    pings = notify.times("WATCHDOG=1")
    before = [t for t in pings if t < stall["start"]]
    during = [t for t in pings if stall["start"] + 1.0 < t < stall["end"]]
    after = [t for t in pings if t > stall["end"]]
    assert before, "no ping while frames flowed (control)"
    assert during == [], f"{len(during)} pings while the tracker was stuck {stall['end'] - stall['start']:.1f} s"
    assert after, "pings did not come back after the stall"
    stuck = [s for s in notify.statuses() if "watchdog: track stuck" in s and "on frame 20" in s]
    assert stuck and stuck[0].startswith("STATUS=ERROR: "), notify.statuses()
    assert "watchdog: track stuck" in result.stderr  # logged once


def test_watchdog_action_exit_stops_with_code_4(tmp_path: Path) -> None:
    settings = layer(
        tmp_path,
        "stall.yaml",
        """
        /**/tracker:
          ros__parameters:
            tracker: stalling
        /**/pipeline:
          ros__parameters:
            watchdog_s: 0.5
            watchdog_action: exit
            stop_timeout_s: 5.0
        """,
    )
    result = subprocess.run(
        stalling_run(
            tmp_path / "stall.json",
            5,
            3.0,
            str(CONFIG),
            str(settings),
            "--max-frames",
            "200",
            "--output-dir",
            str(tmp_path / "out"),
        ),
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == EXIT_WATCHDOG, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("edge-vision: error:")]
    assert len(errors) == 1 and "watchdog: track stuck" in errors[0] and "on frame 5" in errors[0], errors
    assert "Traceback" not in result.stderr


def test_sd_notify_to_an_abstract_socket_and_without_one() -> None:
    address = f"@edge-vision-unit-{os.getpid()}"
    notify = NotifySocket(address)
    try:
        sd = SdNotify(address, watchdog_usec=3_000_000)
        assert sd.enabled and sd.ping_interval == 1.5
        assert sd.notify("WATCHDOG=1", "STATUS=x")
        sd.send_ready("first")
        sd.send_ready("second")  # once per process
        wait_for(lambda: len(notify.messages) >= 2, 5, "two datagrams")
        time.sleep(0.2)
        assert [group for _t, group in notify.messages] == [["WATCHDOG=1", "STATUS=x"], ["READY=1", "STATUS=first"]]
        sd.close()
    finally:
        notify.close()
    assert not SdNotify("").notify("READY=1")  # no $NOTIFY_SOCKET: nothing sent, nothing raised
    gone = SdNotify("@edge-vision-nobody-listens")
    assert not gone.notify("WATCHDOG=1")  # the manager went away: False (logged once), never an exception


# -- the stuck-stage watchdog, lag guard and metrics on the real pipeline ------------------------------------


def slow(seconds: float, only: int | None = None) -> Callable[[FramePacket], FramePacket]:
    def after(packet: FramePacket) -> FramePacket:
        if only is None or packet.meta.sequence == only:
            time.sleep(seconds)
        return packet

    return after


def scrape(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_stuck_stage_is_an_error_on_diagnostics_and_healthz_while_it_lasts(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    port = free_port()
    pipeline = pipelines(sections(tmp_path, watchdog_s=0.5, metrics_port=port, device_id="edge-test-1"))
    pipeline.graph.wrap("detect", slow(3.0, only=30))
    pipeline.start()
    healthz = f"http://127.0.0.1:{port}/healthz"
    wait_for(lambda: pipeline.health.report().frames_processed > 5, 120, "frames through the pipeline")
    assert scrape(healthz)[0] == 200  # control: OK while frames flow
    stuck = wait_for(lambda: condition(pipeline, "watchdog"), 60, "the watchdog condition")
    assert stuck.level == ERROR and stuck.message.startswith("detect stuck ") and "on frame 30" in stuck.message
    report = pipeline.health.report()
    assert report.level == ERROR and report.message.startswith("watchdog: detect stuck ")
    status, body = scrape(healthz)
    assert status == 503 and body.startswith("ERROR: watchdog: detect stuck"), body
    wait_for(lambda: condition(pipeline, "watchdog") is None, 30, "the condition clears once unstuck")
    wait_for(lambda: scrape(healthz)[0] == 200, 30, "/healthz back to 200")
    assert not pipeline.health.failed  # watchdog_action: report (the default) only reports


def test_core_run_returns_on_a_watchdog_exit_and_names_the_stage_it_left_stuck(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    """`Pipeline.run` (bench, tests) returns once the watchdog fails the run, with the stage still stuck (released
    by the test only afterwards; ``released`` would say False had the stall ended by its own 120 s cap), and
    ``abandoned`` names the busy stage although detect has nothing to close."""
    gate = threading.Event()
    released: list[bool] = []

    def stuck(packet: FramePacket) -> FramePacket:
        if packet.meta.sequence == 10:
            released.append(gate.wait(120))
        return packet

    pipeline = pipelines(sections(tmp_path, watchdog_s=0.5, watchdog_action="exit", stop_timeout_s=0.5))
    pipeline.graph.wrap("detect", stuck)
    try:
        assert pipeline.run() is False
        assert pipeline.health.failure_code == EXIT_WATCHDOG
        assert "watchdog: detect stuck" in pipeline.health.report().message
        assert pipeline.graph.abandoned.get("detect") == "still busy, not closed"
    finally:
        gate.set()
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("ev-")], 60, "the stage's thread ends")
    assert released == [True]


def test_lag_guard_drops_queued_frames_to_the_newest(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    """A 10 fps camera (the file at rate 1.0: stamps follow the wall clock) and a detector taking 0.3 s a frame:
    frames age in the queue. max_lag_s 0.5 drops the older queued ones (counted at detect, WARN); without the
    guard (control) the same pipeline drops nothing and just falls further behind."""
    guarded = pipelines(sections(tmp_path, rate=1.0, max_lag_s=0.5))
    guarded.graph.wrap("detect", slow(0.3))
    guarded.start()
    lag = wait_for(lambda: condition(guarded, "lag"), 60, "the lag condition")
    assert lag.level == WARN and lag.message.startswith("frame age ") and "> pipeline.max_lag_s 0.5 s" in lag.message
    wait_for(lambda: dropped(guarded, "detect") >= 5, 60, "drops counted at detect")
    assert "lag: frame age" in guarded.health.report().message
    assert guarded.ops.lag is not None and guarded.ops.lag.dropped == dropped(guarded, "detect")
    processed = guarded.health.report().frames_processed
    wait_for(lambda: guarded.health.report().frames_processed > processed + 3, 60, "frames still processed")
    guarded.close()

    control = pipelines(sections(tmp_path / "control", rate=1.0))
    control.graph.wrap("detect", slow(0.3))
    control.start()
    wait_for(lambda: control.health.report().frames_processed >= 8, 60, "control frames")
    assert dropped(control, "detect") == 0 and condition(control, "lag") is None


def test_metrics_endpoint_has_every_family_with_the_device_label(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    zones = tmp_path / "thermal"
    (zones / "thermal_zone0").mkdir(parents=True)
    (zones / "thermal_zone0" / "temp").write_text("47500\n")
    (zones / "thermal_zone0" / "type").write_text("cpu-thermal\n")
    port = free_port()
    pipeline = pipelines(
        sections(tmp_path, metrics_port=port, device_id="edge-test-2", thermal_path=str(zones), guard_period_s=0.1)
    )
    assert pipeline.ops.metrics is not None and pipeline.ops.metrics.server.server_address[0] == "127.0.0.1"
    pipeline.start()
    wait_for(lambda: pipeline.health.report().frames_processed >= 20, 120, "frames")
    status, text = scrape(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "fps", "frames_processed", "health_level", "stage_processed", "drops", "errors", "queue_depth",
        "reconnects", "source_state", "frame_age_seconds", "temperature_celsius", "disk_free_bytes",
        "resident_memory_bytes", "open_fds", "threads", "shed_factor", "condition", "stage_latency_seconds",
    ):  # fmt: skip
        assert f"edge_vision_{name}" in families, name
    samples = [s for f in families.values() if f.name.startswith("edge_vision_") for s in f.samples]
    assert samples and all(s.labels["device"] == "edge-test-2" for s in samples)
    latency = families["edge_vision_stage_latency_seconds"]
    assert latency.type == "histogram"
    buckets = [s for s in latency.samples if s.name.endswith("_bucket") and s.labels["stage"] == "detect"]
    count = next(s.value for s in latency.samples if s.name.endswith("_count") and s.labels["stage"] == "detect")
    assert len(buckets) >= 10 and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == count >= 20
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    temperature = families["edge_vision_temperature_celsius"].samples
    assert [(s.labels["zone"], s.value) for s in temperature] == [("thermal_zone0:cpu-thermal", 47.5)]
    camera_fps = families["edge_vision_fps"].samples
    assert [s.labels["camera"] for s in camera_fps] == ["camera"] and camera_fps[0].value > 0
    rss_metric = families["edge_vision_resident_memory_bytes"].samples[0].value
    assert 50 * MB < rss_metric < 64 * 1024 * MB
    assert scrape(f"http://127.0.0.1:{port}/nothing-here")[0] == 404
    pipeline.close()
    with pytest.raises(OSError):  # the port is released
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_metrics_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"pipeline.metrics_port {port}: cannot listen on 127.0.0.1"):
            Pipeline(sections(tmp_path, metrics_port=port))


# -- resource guards ------------------------------------------------------------------------------------------


def set_temp(zone: Path, milli: int) -> None:
    """Replace a fake zone's reading atomically: a kernel's sysfs read never sees an empty file, and a guard
    reading between write_text's truncate and write would (it then ignores the zone: seen as a cool-down)."""
    temporary = zone.with_name("temp.new")
    temporary.write_text(f"{milli}\n")
    temporary.replace(zone)


def test_thermal_guard_sheds_frames_when_hot_and_recovers_with_hysteresis(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    zones = tmp_path / "thermal"
    for index, (kind, milli) in enumerate((("cpu-thermal", 45000), ("PMIC-Die", 100000), ("gpu-thermal", 44000))):
        (zones / f"thermal_zone{index}").mkdir(parents=True)
        (zones / f"thermal_zone{index}" / "type").write_text(f"{kind}\n")
        (zones / f"thermal_zone{index}" / "temp").write_text(f"{milli}\n")
    gpu = zones / "thermal_zone2" / "temp"
    pipeline = pipelines(
        sections(
            tmp_path,
            thermal_path=str(zones),
            thermal_warn_c=70.0,
            thermal_hysteresis_c=5.0,
            guard_period_s=0.1,
            shed_max=4,
        )
    )
    pipeline.start()
    wait_for(lambda: pipeline.health.report().frames_processed >= 10, 120, "frames")
    time.sleep(0.5)
    # The PMIC zone reads 100 C on Jetsons whatever happens: ignored, so no shedding at 45 C (control).
    assert (
        pipeline.ops.shedder.factor == 1 and condition(pipeline, "thermal") is None and dropped(pipeline, "shed") == 0
    )
    set_temp(gpu, 91500)
    hot = wait_for(lambda: pipeline.ops.shedder.factor == 4 and condition(pipeline, "thermal"), 30, "shedding at 4")
    assert hot.level == WARN and "gpu-thermal 91.5 C > pipeline.thermal_warn_c 70.0" in hot.message
    assert "passing 1 of 4 frames" in hot.message
    wait_for(lambda: dropped(pipeline, "shed") >= 10, 60, "frames shed")
    detect = next(s for s in pipeline.health.report().stages if s.name == "detect").processed
    shed = dropped(pipeline, "shed")
    wait_for(lambda: dropped(pipeline, "shed") >= shed + 30, 60, "more frames shed")
    detect_delta = next(s for s in pipeline.health.report().stages if s.name == "detect").processed - detect
    assert detect_delta <= (dropped(pipeline, "shed") - shed) / 3 + 2  # 1 of 4 reaches the detector
    set_temp(gpu, 68000)  # below the mark but within the hysteresis band: holds
    time.sleep(1.0)
    assert pipeline.ops.shedder.factor == 4
    set_temp(gpu, 52000)
    wait_for(lambda: pipeline.ops.shedder.factor == 1 and condition(pipeline, "thermal") is None, 30, "recovered")
    shed = dropped(pipeline, "shed")
    time.sleep(0.5)
    assert dropped(pipeline, "shed") == shed  # nothing shed any more


def test_tegrastats_is_read_where_installed(tmp_path: Path) -> None:
    line = (
        "RAM 2448/30536MB (lfb 6676x4MB) SWAP 0/15268MB (cached 0MB) CPU [0%@729,1%@729] EMC_FREQ 0% "
        "GR3D_FREQ 0% CPU@45.5C tboard@35C SOC2@42.25C tdiode@36.5C CV0@-256C GPU@88.718C PMIC@100C tj@89.5C "
        "VDD_GPU_SOC 3050mW/3050mW"
    )
    assert parse_tegrastats(line) == {
        "CPU": 45.5, "tboard": 35.0, "SOC2": 42.25, "tdiode": 36.5, "GPU": 88.718, "tj": 89.5
    }  # fmt: skip
    fake = tmp_path / "tegrastats"
    fake.write_text(f"#!/bin/sh\nwhile true; do echo '{line}'; sleep 0.1; done\n")
    fake.chmod(0o755)
    sensors = ThermalSensors(str(tmp_path / "no-zones"), tegrastats=str(fake))
    sensors.start()
    try:
        temps = wait_for(sensors.read, 10, "a tegrastats reading")
    finally:
        sensors.close()
    assert temps["tegrastats:tj"] == 89.5 and "tegrastats:PMIC" not in temps and "tegrastats:CV0" not in temps
    assert [t.name for t in threading.enumerate() if t.name == "ev-tegrastats"] == []


def test_memory_guard_sheds_above_the_soft_mark_then_stops_with_its_exit_code(
    tmp_path: Path, pipelines: Callable[[dict[str, Any]], Pipeline]
) -> None:
    """Real memory: the test allocates (and touches) ballast to push this process's RSS over 90 % of the ceiling,
    then over it."""
    limit_mb = (rss() + 1200 * MB) // MB
    pipeline = pipelines(sections(tmp_path, memory_limit_mb=limit_mb, guard_period_s=0.1, shed_max=4))
    pipeline.start()
    wait_for(lambda: pipeline.health.report().frames_processed >= 10, 120, "frames")
    assert condition(pipeline, "memory") is None and pipeline.ops.shedder.factor == 1  # control: below the marks
    ballast = [np.ones(int(limit_mb * 0.95 * MB) - rss(), dtype=np.uint8)]
    warn = wait_for(lambda: condition(pipeline, "memory"), 30, "the memory condition")
    assert warn.level == WARN and f"(90 % of pipeline.memory_limit_mb {limit_mb})" in warn.message
    wait_for(lambda: dropped(pipeline, "shed") >= 5, 60, "frames shed")
    assert not pipeline.health.failed
    ballast.append(np.ones(int(limit_mb * 0.1 * MB), dtype=np.uint8))
    wait_for(lambda: pipeline.health.failed, 30, "the stop at the ceiling")
    del ballast
    assert pipeline.health.failure_code == EXIT_MEMORY == 3
    assert pipeline.health.failure is not None and pipeline.health.failure.startswith("memory: RSS ")
    assert condition(pipeline, "memory").level == ERROR
    assert pipeline.graph.wait(30)  # the sources stopped: the run ends


def test_edge_vision_run_exits_3_at_its_memory_ceiling(tmp_path: Path) -> None:
    settings = layer(tmp_path, "tiny.yaml", "/**/pipeline:\n  ros__parameters:\n    memory_limit_mb: 1\n")
    result = subprocess.run(
        cli("run", str(CONFIG), str(settings), "--output-dir", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == EXIT_MEMORY, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("edge-vision: error:")]
    assert len(errors) == 1 and "memory: RSS " in errors[0] and "> pipeline.memory_limit_mb 1" in errors[0], errors
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["ok"] is False


# -- soak and the run summary ---------------------------------------------------------------------------------


def test_soak_writes_samples_and_fits(tmp_path: Path) -> None:
    target = tmp_path / "soak.json"
    result = subprocess.run(
        cli("soak", "--minutes", "0.1", "--json", str(target), "--output-dir", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    soak = json.loads(target.read_text())
    samples = soak["samples"]
    assert len(samples) >= 4 and samples[-1]["t_s"] >= 5.5
    assert {"t_s", "rss_mb", "open_fds", "threads", "fps", "latency_p50_ms", "latency_p99_ms", "frames"} <= set(
        samples[0]
    )
    assert samples[-1]["frames"] > samples[1]["frames"] > 0 and samples[-1]["fps"] > 0
    for key in ("rss_slope_mb_per_10min", "fps_drift_per_10min", "fps_drift_pct_per_10min"):
        assert isinstance(soak[key], float), key
    assert soak["exit_code"] == 0 and soak["stopped_by"] == "soak: done" and soak["summary"]["frames"] > 0
    assert "RSS [MB]" in result.stdout and "RSS slope" in result.stdout


def feed(summary: RunSummary, frames: int, ids: Iterator[int], long_every: int = 50) -> None:
    """``frames`` frames of one camera: a fresh id (from ``ids``) each frame, seen for 2 frames, and every
    ``long_every``-th id stays 12 frames (a counted track)."""
    live: dict[int, int] = {}
    for _frame in range(frames):
        next_id = next(ids)
        live[next_id] = 12 if next_id % long_every == 0 else 2
        present = list(live)
        summary.on_tracks(
            Detections(
                xyxy=np.zeros((len(present), 4), np.float32),
                scores=np.ones(len(present), np.float32),
                class_ids=np.zeros(len(present), np.int32),
                track_ids=np.asarray(present, np.int64),
            )
        )
        for track_id in present:
            live[track_id] -= 1
            if not live[track_id]:
                del live[track_id]


def test_run_summary_memory_is_bounded_and_counts_are_kept() -> None:
    """The summary kept every track id for the whole run (~100 B each). Retired tracks are now folded into counts:
    memory stays flat however many ids pass, and the counts equal keeping them all (control: never retiring)."""

    def grown(retire_after: int, frames: int) -> tuple[int, dict[str, Any], int]:
        summary = RunSummary(["person"], retire_after_frames=retire_after)
        ids = itertools.count()
        feed(summary, 2_000, ids)  # warm up: dicts and counters at their working size
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        feed(summary, frames, ids)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return after - before, summary.to_dict(), summary.tracks_held

    bounded, counts, held = grown(1000, 20_000)
    unbounded, expected, held_all = grown(10**9, 20_000)
    assert held <= 1000 + 250 + 12 and held_all == 22_000
    assert unbounded > 2 * MB and bounded < unbounded / 20, (bounded, unbounded)
    assert counts["tracks"] == expected["tracks"] == 22_000 // 50
    assert counts["short_tracks"] == expected["short_tracks"] and counts["tracks_per_class"] == {"person": 440}
    assert counts["median_track_length"] == expected["median_track_length"] == 12
    with pytest.raises(ConfigError, match="retire_after_frames must be >= 1"):
        RunSummary([], retire_after_frames=0)


def test_pipeline_yaml_documents_the_ops_parameters() -> None:
    text = (REPO / "config" / "pipeline.yaml").read_text()
    loaded = config.load_file(CONFIG)["pipeline"]
    for key in ("watchdog_s", "memory_limit_mb", "thermal_warn_c", "max_lag_s", "metrics_port"):
        assert f"    {key}:" in text and key in loaded, key


def test_sigterm_sends_stopping_before_the_process_drains(tmp_path: Path) -> None:
    notify = NotifySocket(str(tmp_path / "notify"))
    try:
        process = subprocess.Popen(
            cli("run", str(CONFIG), "--output-dir", str(tmp_path / "out")),
            env=run_env(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="2000000"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: notify.times("WATCHDOG=1"), 120, "a watchdog ping")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=120)
        time.sleep(0.3)
    finally:
        notify.close()
    assert process.returncode == 0, err[-2000:]
    stopping = notify.times("STOPPING=1")
    assert len(stopping) == 1 and not [t for t in notify.times("WATCHDOG=1") if t > stopping[0]]
