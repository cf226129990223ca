"""Start the stages as separate processes (one per node), as ``pipeline_nodes.launch.py`` does, for
environments without ``ros2 launch`` (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from edge_vision.core import assets
from edge_vision.core.errors import ConfigError

STAGES = ("camera", "detector", "tracker", "events", "visualizer")


def ros_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: shared-memory-only Fast DDS (large images over UDP get lost)."""
    env = dict(base if base is not None else os.environ)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in env:
        with contextlib.suppress(ConfigError):  # not bundled in this install: default transports still work
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(assets.find("config/fastdds_shm.xml"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_nodes(
    params_file: str | Path,
    stages: Sequence[str] = STAGES,
    *,
    namespace: str = "",
    remap: Mapping[str, str] | None = None,
    log_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """One process per stage, each reading ``params_file``. ``remap``: ROS name remappings applied to every
    process started here (``{"detections": "detections_lossy"}`` = ``-r detections:=detections_lossy``).
    Logs go to ``log_dir/[namespace_]stage.log``."""
    processes = []
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        cmd = [sys.executable, "-m", f"edge_vision.ros.nodes.{stage}", "--ros-args", "--params-file", str(params_file)]
        if namespace:
            cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]  # rcl takes fully qualified namespaces only
        for source, target in (remap or {}).items():
            cmd += ["-r", f"{source}:={target}"]
        log_name = f"{namespace.strip('/').replace('/', '_')}_{stage}" if namespace.strip("/") else stage
        out = open(Path(log_dir) / f"{log_name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        try:
            processes.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=ros_environment(env)))
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own copy
    return processes


def stop_nodes(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(2)  # SIGINT: nodes close files (video, JSONL) cleanly
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes
