"""Resource guards: each acts, and says so on /diagnostics (a ``Health`` condition) for as long as it acts.

- ``LoadShedder``: the one place frames are shed. A screen at the detector's input (after its queue, before
  inference: the expensive part) that passes 1 of N frames per camera; the others are counted as drops at
  ``<camera>/shed``. The memory and thermal guards ask it for a factor; the largest request wins.
- ``MemoryGuard``: resident memory against ``pipeline.memory_limit_mb``. Above 90 % of it, shed load; above it,
  stop cleanly with exit code 3 (``EXIT_MEMORY``) so the supervisor (systemd, docker) restarts the process.
- ``ThermalGuard``: the hottest of ``<thermal_path>/thermal_zone*/temp`` and, on a Jetson, ``tegrastats``.
  Above ``pipeline.thermal_warn_c``, shed load ("better to skip frames than to shut down"); ease off once it is
  ``thermal_hysteresis_c`` below.
- ``LagGuard``: a screen at the detector. A frame older than ``pipeline.max_lag_s`` (now - capture stamp) while a
  newer frame of its camera waits: it and every older queued frame are dropped, counted, WARN (held until frames
  have been in time for 5 s).

Shedding doubles each ``guard_period_s`` while a guard is above its mark, up to ``shed_max``, and halves while it
is below its recovery mark: thermal mass makes temperature move over tens of seconds, so a step per period
reacts within a few seconds without oscillating frame by frame.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.graph import Graph
from edge_vision.core.runtime.health import ERROR, OK, WARN, Health

log = logging.getLogger(__name__)

EXIT_MEMORY = 3  # the process stopped at its memory ceiling (a supervisor restarts it)
MEMORY_SOFT = 0.9  # shed load above this share of pipeline.memory_limit_mb
MEMORY_EASE = 0.85  # ... and ease off below this share (RSS seldom falls: the allocator keeps freed pages)
MB = 1 << 20

CameraOf = Callable[[str], "str | None"]  # camera_id -> camera name (topic namespace), None if unknown


def shed_stage(camera: str) -> str:
    """Where frames dropped by load shedding are counted (a pseudo-stage beside the camera's stages)."""
    return f"{camera}/shed" if camera else "shed"


class LoadShedder:
    def __init__(self, health: Health, max_factor: int, camera_of: CameraOf) -> None:
        self.health = health
        self.max_factor = max(1, max_factor)
        self.camera_of = camera_of
        self.factor = 1  # pass 1 of factor frames per camera
        self.shed = 0
        self._requests: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def request(self, guard: str, factor: int) -> None:
        """Guard ``guard`` wants 1 of ``factor`` frames passed (1: it wants nothing shed)."""
        with self._lock:
            self._requests[guard] = max(1, min(factor, self.max_factor))
            self.factor = max(self._requests.values())

    def __call__(self, packet: FramePacket) -> bool:
        factor = self.factor
        if factor <= 1:
            return True
        camera_id = packet.meta.camera_id
        with self._lock:
            count = self._counts.get(camera_id, 0)
            self._counts[camera_id] = count + 1
            self.shed += count % factor != 0
        if count % factor == 0:
            return True
        camera = self.camera_of(camera_id) or ""
        name = shed_stage(camera)
        self.health.stage(name, camera)  # per camera on stats and /diagnostics: drops with their reason
        self.health.dropped(name)
        return False


def _step(factor: int, hot: bool, cool: bool, max_factor: int) -> int:
    if hot:
        return min(factor * 2, max_factor)
    if cool:
        return max(factor // 2, 1)
    return factor


class MemoryGuard:
    def __init__(self, health: Health, shedder: LoadShedder, limit_mb: int, exit_code: int = EXIT_MEMORY) -> None:
        self.health = health
        self.shedder = shedder
        self.limit = limit_mb * MB
        self.limit_mb = limit_mb
        self.exit_code = exit_code
        self.factor = 1
        self._process = psutil.Process()

    def check(self) -> int:
        """One check; returns the resident set size in bytes."""
        rss = int(self._process.memory_info().rss)
        used = f"RSS {rss / MB:.0f} MB"
        if rss > self.limit:
            message = f"{used} > pipeline.memory_limit_mb {self.limit_mb}: stopping (exit code {self.exit_code})"
            self.health.condition("memory", ERROR, message)
            if not self.health.failed:
                log.error("memory guard: %s", message)
            self.health.fail(f"memory: {message}", code=self.exit_code)
            return rss
        above = rss > self.limit * MEMORY_SOFT
        factor = _step(self.factor, above, rss < self.limit * MEMORY_EASE, self.shedder.max_factor)
        if factor != self.factor:
            log.warning("memory guard: %s, passing 1 of %d frames", used, factor)
        self.factor = factor
        self.shedder.request("memory", factor)
        if factor > 1:
            mark = f"{self.limit_mb * MEMORY_SOFT:.0f} MB (90 % of pipeline.memory_limit_mb {self.limit_mb})"
            state = f"above {mark}" if above else f"easing off below {self.limit_mb * MEMORY_EASE:.0f} MB"
            self.health.condition("memory", WARN, f"{used}, {state}: passing 1 of {factor} frames")
        else:
            self.health.condition("memory", OK)
        return rss


# -- temperature -------------------------------------------------------------------------------------------

# tegrastats: "... CPU@45.5C tboard@35C SOC2@42.25C GPU@41.718C tj@45.5C CV0@-256C ..." (-256: no sensor).
_TEGRA_TEMP = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")
# Readings outside this range are absent or fake sensors (Jetson's "-256C"; PMIC zones that always read 100 C).
_PLAUSIBLE = (-40.0, 150.0)
_IGNORED = ("pmic",)


def parse_tegrastats(line: str) -> dict[str, float]:
    """Temperatures (C) of one tegrastats line, by sensor name."""
    temps = {}
    for name, value in _TEGRA_TEMP.findall(line):
        celsius = float(value)
        if _PLAUSIBLE[0] < celsius < _PLAUSIBLE[1] and not name.lower().startswith(_IGNORED):
            temps[name] = celsius
    return temps


class Tegrastats:
    """Jetson's ``tegrastats`` as a child process, its latest line parsed (started only where it is installed)."""

    def __init__(self, executable: str, interval_ms: int = 1000) -> None:
        self.executable = executable
        self.interval_ms = interval_ms
        self.latest: dict[str, float] = {}
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._process = subprocess.Popen(
                [self.executable, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except OSError as exc:
            log.warning("thermal guard: cannot start %s: %s", self.executable, exc)
            return
        self._thread = threading.Thread(target=self._read, name="ev-tegrastats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            temps = parse_tegrastats(line)
            if temps:
                self.latest = temps

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
        if self._thread is not None:
            self._thread.join(5)


class ThermalSensors:
    """``<root>/thermal_zone*/temp`` (millidegrees C, named by the zone's ``type``) and tegrastats' readings."""

    def __init__(self, root: str, tegrastats: str | None = None) -> None:
        self.root = Path(root)
        executable = tegrastats if tegrastats is not None else shutil.which("tegrastats")
        self.tegrastats = Tegrastats(executable) if executable else None

    def start(self) -> None:
        if self.tegrastats is not None:
            self.tegrastats.start()

    def read(self) -> dict[str, float]:
        temps: dict[str, float] = {}
        for temp in sorted(self.root.glob("thermal_zone*/temp")):
            try:
                celsius = int(temp.read_text().strip()) / 1000.0
                kind = (temp.parent / "type").read_text().strip() if (temp.parent / "type").is_file() else ""
            except (OSError, ValueError):  # a zone that cannot be read right now (some return EAGAIN/EINVAL)
                continue
            if _PLAUSIBLE[0] < celsius < _PLAUSIBLE[1] and not kind.lower().startswith(_IGNORED):
                temps[f"{temp.parent.name}:{kind}" if kind else temp.parent.name] = celsius
        if self.tegrastats is not None:
            temps.update({f"tegrastats:{name}": value for name, value in self.tegrastats.latest.items()})
        return temps

    def close(self) -> None:
        if self.tegrastats is not None:
            self.tegrastats.close()


class ThermalGuard:
    def __init__(
        self, health: Health, shedder: LoadShedder, sensors: ThermalSensors, warn_c: float, hysteresis_c: float
    ) -> None:
        self.health = health
        self.shedder = shedder
        self.sensors = sensors
        self.warn_c = warn_c
        self.hysteresis_c = hysteresis_c
        self.factor = 1
        self.temps: dict[str, float] = {}

    def check(self) -> dict[str, float]:
        self.temps = temps = self.sensors.read()
        if not temps or self.warn_c <= 0:
            return temps
        zone, hottest = max(temps.items(), key=lambda kv: kv[1])
        hot, cool = hottest > self.warn_c, hottest < self.warn_c - self.hysteresis_c
        factor = _step(self.factor, hot, cool, self.shedder.max_factor)
        reading = f"{zone} {hottest:.1f} C"
        if factor != self.factor:
            log.warning("thermal guard: %s (warn %.1f C), passing 1 of %d frames", reading, self.warn_c, factor)
        self.factor = factor
        self.shedder.request("thermal", factor)
        if factor > 1:
            above = f"> pipeline.thermal_warn_c {self.warn_c:.1f}" if hot else f"(cooling, warn {self.warn_c:.1f})"
            self.health.condition("thermal", WARN, f"{reading} {above}: passing 1 of {factor} frames")
        else:
            self.health.condition("thermal", OK)
        return temps


# -- lag ---------------------------------------------------------------------------------------------------


class LagGuard:
    """A screen on ``stage`` (the detector): see the module docstring."""

    def __init__(
        self,
        graph: Graph,
        health: Health,
        max_lag_s: float,
        clock: Callable[[], int],
        camera_of: CameraOf,
        stage: str = "detect",
    ) -> None:
        self.graph = graph
        self.health = health
        self.max_lag_s = max_lag_s
        self.max_lag_ns = int(max_lag_s * 1e9)
        self.clock = clock
        self.camera_of = camera_of
        self.stage = stage
        self.dropped = 0
        # camera id -> when its guard last acted: the condition holds until frames are in time for warn_hold_s
        # (5 s); cleared at the first fresh frame, it flapped every second while the guard acted every other.
        self._lagging: dict[str, float] = {}
        self._logged = 0.0

    def __call__(self, packet: FramePacket) -> bool:
        camera_id = packet.meta.camera_id
        age_ns = self.clock() - packet.meta.stamp_ns
        camera = self.camera_of(camera_id) or ""
        if age_ns <= self.max_lag_ns:
            acted = self._lagging.get(camera_id)
            if acted is not None and time.monotonic() - acted > self.health.warn_hold_s:
                del self._lagging[camera_id]
                self.health.condition("lag", OK, camera=camera)
            return True
        queued: list[int] = []

        def older(items: list[FramePacket]) -> list[FramePacket]:
            mine = [p for p in items if p.meta.camera_id == camera_id]
            queued.append(len(mine))
            return mine[:-1]  # every queued frame of this camera but the newest

        gone = self.graph.prune(self.stage, older)
        newer = bool(queued and queued[0])
        dropped = len(gone) + newer  # and this frame too, when a newer one waits
        if dropped:
            self.health.dropped(self.stage, dropped)
        self.dropped += dropped
        self._lagging[camera_id] = time.monotonic()
        message = (
            f"frame age {age_ns / 1e9:.1f} s > pipeline.max_lag_s {self.max_lag_s:.1f} s at {self.stage}, "
            f"dropped {dropped} ({self.dropped} so far)"
        )
        self.health.condition("lag", WARN, message, camera=camera)
        now = time.monotonic()
        if now - self._logged > 5.0:  # one line per 5 s, not one per frame
            self._logged = now
            log.warning("lag guard: %s", message)
        return not newer
