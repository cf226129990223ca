"""``pipeline_container`` ends cleanly, every time: exit code 0, no C++ ``terminate called`` at interpreter exit
(a thread or DDS entity outliving rclpy's shutdown), no Python traceback; and no thread started by a run
outlives it in-process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from rclpy.context import Context

from edge_vision.ros.container import RosPipeline
from test_ros_pipeline import sections, write_params

RUNS = 50


def test_container_exits_cleanly_in_consecutive_runs(tmp_path: Path) -> None:
    run_sections = sections(max_frames=2)  # as short as a real run gets: the point is start-up and shutdown
    run_sections["detector"]["workers"] = 1
    params = write_params(run_sections, tmp_path / "params.yaml")
    command = [sys.executable, "-m", "edge_vision.ros.container", "--ros-args", "--params-file", str(params)]
    failures = []
    started = time.monotonic()
    for run in range(RUNS):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "terminate called" in output or "Traceback" in output:
            failures.append(f"run {run}: exit code {result.returncode}\n{output[-3000:]}")
        elif "2 frames processed" not in output:
            failures.append(f"run {run}: did not report its 2 frames\n{output[-3000:]}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {RUNS} runs ended badly ({elapsed:.0f} s):\n" + "\n".join(failures)


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("ev-", "ros-executor"))]


def test_no_pipeline_thread_outlives_run_and_destroy(ros_context: Context) -> None:
    before = set(threading.enumerate())
    assert not pipeline_threads(), "a thread of an earlier run is still alive"
    ros = RosPipeline(sections=sections(max_frames=3), context=ros_context)
    try:
        assert ros.run() == 0
        assert ros.pipeline is not None and ros.pipeline.graph.alive_threads() == []
    finally:
        ros.destroy()
    assert pipeline_threads() == []
    # Nothing else either (the executor's worker pool included).
    assert [t.name for t in threading.enumerate() if t not in before] == []
