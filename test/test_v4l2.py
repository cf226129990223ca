"""The V4L2 (USB camera) source: the device checks and their errors on any machine; real capture where a
/dev/video* capture device exists (skipped otherwise: this VM has none and cannot load v4l2loopback)."""

from __future__ import annotations

import glob
import os
import threading
import time
from pathlib import Path

import pytest

from edge_vision.core import config, plugins
from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.interfaces import Source
from edge_vision.core.sources import v4l2
from edge_vision.core.sources.v4l2 import V4L2Source, check_device, is_m2m_device


def capture_devices() -> list[str]:
    found = []
    for path in sorted(glob.glob("/dev/video*")):
        try:
            check_device(path)
        except (SourceError, ConfigError):
            continue
        found.append(path)
    return found


def test_missing_device_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "video7")
    with pytest.raises(SourceError, match=rf"camera\.device: {missing} does not exist: no V4L2 camera there"):
        plugins.build("sources", "v4l2", {"device": missing}, where="camera")
    # The same through a config file's camera section, per camera.
    sections = config.resolve_all({"camera": {"source": "v4l2", "device": missing, "framerate": 30.0}})
    assert sections["camera"]["device"] == missing
    from edge_vision.core.runtime.build import build_source

    with pytest.raises(SourceError, match="does not exist"):
        build_source(sections["camera"])


def test_nodes_that_are_not_capture_devices(tmp_path: Path) -> None:
    regular = tmp_path / "video0"
    regular.write_bytes(b"")
    with pytest.raises(SourceError, match=rf"camera\.device: {regular} is not a device node"):
        V4L2Source(str(regular))
    with pytest.raises(SourceError, match=r"camera\.device: /dev/null is not a V4L2 device"):
        V4L2Source("/dev/null")
    assert not is_m2m_device("/dev/null")


def test_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"camera\.width and camera\.height go together"):
        V4L2Source("/dev/null", width=640)
    with pytest.raises(ConfigError, match=r"camera\.pixel_format must be one of"):
        plugins.build("sources", "v4l2", {"pixel_format": "bayer"}, where="camera")
    with pytest.raises(ConfigError, match=r"camera\.device is empty"):
        check_device("")


def test_querycap_layout_matches_the_kernel_header() -> None:
    # _IOR('V', 0, struct v4l2_capability) from linux/videodev2.h: a 104-byte struct.
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600


def test_busy_and_unplugged_are_named() -> None:
    source = V4L2Source.__new__(V4L2Source)  # the explanations alone, without a device
    source.device, source.options, source.open_timeout_s, source.stall_timeout_s = "/dev/video0", {}, 2.0, 2.0
    busy = OSError(16, "Device or resource busy")
    assert "is busy: another process is capturing from it" in source._explain(busy, opening=True, elapsed=0.1)
    gone = FileNotFoundError(2, "No such file or directory")
    assert "disappeared (unplugged?)" in source._explain(gone, opening=True, elapsed=0.0)


NO_DEVICE = "no /dev/video* capture device here, and " + (
    "the v4l2loopback module cannot be loaded in this VM (no kernel modules: /lib/modules is absent)"
    if not os.path.isdir("/lib/modules")
    else "the v4l2loopback module is not loaded (modprobe v4l2loopback makes one)"
)


@pytest.mark.skipif(not capture_devices(), reason=NO_DEVICE)
def test_real_device_captures_frames() -> None:
    device = capture_devices()[0]
    source = plugins.build(
        "sources", "v4l2", {"device": device, "stall_timeout_s": 3.0, "open_timeout_s": 3.0}, where="camera"
    )
    assert isinstance(source, Source)
    frames = []
    with source:
        for frame in source.frames():
            frames.append((frame, time.time_ns()))
            if len(frames) >= 10:
                break
        assert source.status().state == "streaming"
    assert frames[0][0].image.ndim == 3 and all(f.stamp_ns <= seen for f, seen in frames)
    assert not [t for t in threading.enumerate() if t.name.startswith("ev-capture")]
    assert os.path.exists(device)
