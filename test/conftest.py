"""Shared fixtures. Every test runs the real thing: real rclpy and Fast DDS (on localhost only), real video,
real models. A missing asset is a failure, never a skip."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# DDS discovery must never leave this host.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def _claim_domain() -> str:
    """Each test run on its own DDS domain (every process it starts inherits it): two checkouts testing at once
    on one domain were seen to break each other. A domain in 20..219 is claimed with an flock held until this
    process exits, so concurrent runs on one host never share one (a pid-derived id alone collided 1 in 200).
    An explicit ROS_DOMAIN_ID wins."""
    explicit = os.environ.get("ROS_DOMAIN_ID")
    if explicit:
        return explicit
    first = os.getpid() % 200
    for step in range(200):
        domain = 20 + (first + step) % 200
        fd = os.open(Path(tempfile.gettempdir()) / f"edge_vision_tests_domain_{domain}.lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _DOMAIN_LOCKS.append(fd)  # open, hence held, for the life of the test run
        return str(domain)
    raise RuntimeError("every ROS domain 20..219 is claimed by another test run on this host")


_DOMAIN_LOCKS: list[int] = []
os.environ["ROS_DOMAIN_ID"] = _claim_domain()
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
SHARED = REPO.parent / "shared" / "assets"
VIDEO = REPO / "data" / "vtest.avi"
MODEL = REPO / "models" / "yolox_nano.onnx"
LABELS = REPO / "models" / "coco80_names.txt"
CONFIG = REPO / "config" / "pipeline.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """Tests run in a scratch folder: whatever a pipeline writes to relative paths (the bundled config's
    events.jsonl, out/) lands there, never in the checkout. Every path into the repository is absolute. Here and
    not at import: pytest resolves `testpaths` after loading this file, relative to the working folder."""
    os.chdir(tempfile.mkdtemp(prefix="edge_vision_tests_"))


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"required test asset missing: {path}")
    return path


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    for name in ("images/bus.jpg", "models/yolov8n_int8.onnx", "models/yolo26n_int8.onnx"):
        _require(SHARED / name)
    return SHARED


@pytest.fixture(scope="session")
def video() -> Path:
    return _require(VIDEO)


@pytest.fixture(scope="session")
def model() -> Path:
    return _require(MODEL)


@pytest.fixture()
def ros_context() -> Iterator[object]:
    import rclpy

    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from edge_vision.cli import main; main()", *args]


def ros2_command() -> str:
    """The `ros2` executable; missing, it is a failure, never a skip."""
    found = shutil.which("ros2")
    if found is None:
        pytest.fail("the ros2 command is missing: scripts/setup.sh installs it from ../shared/vendor/ros2-python")
    return found


def ros2(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ros2_command(), *args], capture_output=True, text=True, timeout=timeout)


def ros2_at_node(*args: str, within: float = 20.0) -> subprocess.CompletedProcess[str]:
    """A `ros2` verb that looks a node up (`param`, `lifecycle`), without the daemon, whose graph cache was seen
    to lag behind the graph ("Node not found" for a node already publishing). A node this fresh CLI participant
    has not discovered yet is asked again, up to ``within`` seconds (discovery, not the answer). The last result
    is returned: callers assert on it."""
    deadline = time.monotonic() + within
    while True:
        done = ros2(*args, "--no-daemon", "--spin-time", "2", timeout=60)
        if "Node not found" not in done.stdout + done.stderr or time.monotonic() > deadline:
            return done
