"""Third-party plugins through entry points alone: ``test/plugin_pkg`` (a centroid tracker and a counting
action) is pip-installed into a temporary folder, never into the venv, and used from ``edge-vision`` with
``PYTHONPATH`` pointing there."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import yaml

from conftest import CONFIG, REPO, cli
from edge_vision.core import plugins
from edge_vision.core.detections import Detections
from edge_vision.core.frame import FrameMeta

PACKAGE = REPO / "test" / "plugin_pkg"
TRACKER_PARAMS = {"max_distance", "max_age_s", "min_score"}
ACTION_PARAMS = {"path", "kinds", "fail_after"}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has the plugin package installed (in a temporary folder)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    # Built from a copy, so the build leaves no egg-info or build/ folder in the repository.
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "ev_plugin_demo").is_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return env


def document(tmp_path: Path, **tracker: Any) -> Path:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    config["/**/tracker"]["ros__parameters"] = {
        "tracker": "centroid",
        "max_distance": 60.0,
        "max_age_s": 0.5,
        **tracker,
    }
    config["/**/events"]["ros__parameters"]["actions"]["count"] = {"type": "counter", "path": "counts.json"}
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edge-vision: error:")]


def test_installed_only_in_the_temporary_folder(plugin_env: dict[str, str]) -> None:
    probe = "from edge_vision.core import plugins; print(plugins.available('trackers'), plugins.available('actions'))"
    with_plugin = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=plugin_env
    )
    assert with_plugin.stdout.strip() == "['bytetrack', 'centroid'] ['counter', 'jsonl']", with_plugin.stderr
    # This process (the venv alone) does not see it: nothing was installed into the venv.
    assert "centroid" not in plugins.available("trackers") and "counter" not in plugins.available("actions")
    assert importlib.util.find_spec("ev_plugin_demo") is None


def test_run_with_plugin_tracker_and_action(plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        cli("run", str(document(tmp_path)), "--output-dir", str(out), "--max-frames", "60"),
        capture_output=True,
        text=True,
        timeout=300,
        env=plugin_env,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["frames"] == 60
    assert summary["tracks_per_class"].get("person", 0) >= 3  # people walking keep their ids for >= 10 frames
    counts = json.loads((out / "counts.json").read_text())  # the action's file, written at close
    assert counts["frames"] == 60 and len(counts["track_ids"]) >= 3 and min(counts["track_ids"]) >= 1
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert counts["events"] == len(events) == sum(summary["events"].values())
    assert all(e["track_id"] >= 1 for e in events)


def test_schema_includes_plugin_parameters(plugin_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(cli("schema"), capture_output=True, text=True, timeout=60, env=plugin_env)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    tracker = schema["patternProperties"]["^(/\\*\\*/)?tracker$"]["oneOf"][0]
    branches = {b["if"]["properties"]["tracker"]["const"]: b["then"]["properties"] for b in tracker["allOf"]}
    assert set(branches) == {"bytetrack", "centroid"}
    assert set(branches["centroid"]) >= TRACKER_PARAMS and "track_thresh" not in branches["centroid"]
    assert branches["centroid"]["max_distance"]["minimum"] == 1.0
    events = schema["patternProperties"]["^(/\\*\\*/)?events$"]["oneOf"][0]
    variants = events["properties"]["actions"]["oneOf"][0]["additionalProperties"]["oneOf"]
    counter = next(v for v in variants if v["properties"]["type"] == {"const": "counter"})
    assert set(counter["properties"]) == {"type", "name"} | ACTION_PARAMS
    # The schema validates the plugin config, rejects a misspelt plugin parameter, and still lets the default
    # tracker's section leave out its selector now that a second tracker is installed.
    check = jsonschema.Draft202012Validator(schema)
    config = yaml.safe_load(document(tmp_path).read_text())
    assert list(check.iter_errors(config)) == []
    config["/**/tracker"]["ros__parameters"]["max_distanse"] = 3.0
    assert list(check.iter_errors(config))
    bundled = yaml.safe_load(CONFIG.read_text())
    del bundled["/**/tracker"]["ros__parameters"]["tracker"]
    assert list(check.iter_errors(bundled)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"max_distanse": 3.0}, "unknown parameter(s) tracker.max_distanse; known: ["),
        ({"max_distance": 0.5}, "tracker.max_distance must be >= 1.0, got 0.5"),
        ({"max_age_s": "long"}, "tracker.max_age_s must be of type float, got 'long'"),
    ],
)
def test_bad_plugin_parameter_is_one_line(
    plugin_env: dict[str, str], tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    result = subprocess.run(
        cli("run", str(document(tmp_path, **change)), "--output-dir", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=120,
        env=plugin_env,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == error_lines(result.stderr) and len(error_lines(result.stderr)) == 1
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_bad_action_parameter_is_one_line(plugin_env: dict[str, str], tmp_path: Path) -> None:
    path = document(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["/**/events"]["ros__parameters"]["actions"]["count"]["kinds"] = "line_cross"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        cli("run", str(path), "--output-dir", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=120,
        env=plugin_env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        f"edge-vision: error: config file {path}: events.actions.count.kinds must be a list, got 'line_cross'"
    ]


def test_a_failing_action_fails_the_run(plugin_env: dict[str, str], tmp_path: Path) -> None:
    """An action raising on every frame exhausts the error budget: exit 1, one line naming the stage."""
    path = document(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["/**/events"]["ros__parameters"]["actions"]["count"]["fail_after"] = 5
    config["/**/pipeline"]["ros__parameters"]["error_budget"] = 3
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = subprocess.run(
        cli("run", str(path), "--output-dir", str(out)), capture_output=True, text=True, timeout=300, env=plugin_env
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        "edge-vision: error: stage actions failed 3 times in a row: RuntimeError: counter gave up after 5 frames"
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["ok"] and summary["frames"] < 795  # the sources were stopped


def _centroid_module() -> Any:
    spec = importlib.util.spec_from_file_location("centroid", PACKAGE / "src" / "ev_plugin_demo" / "centroid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_centroid_tracker_keeps_ids_and_reads_time_from_stamps() -> None:
    tracker = _centroid_module().CentroidTracker(max_distance=20.0, max_age_s=0.5)

    def boxes(*x: float) -> Detections:
        xyxy = np.array([[v, 100.0, v + 30.0, 180.0] for v in x], np.float32)
        return Detections(xyxy, np.full(len(x), 0.9, np.float32), np.zeros(len(x), np.int32))

    def meta(seconds: float) -> FrameMeta:
        return FrameMeta(int(seconds * 1e9), "cam", 0)

    assert tracker.update(boxes(100.0, 300.0), meta(0.0)).track_ids.tolist() == [1, 2]
    assert tracker.update(boxes(310.0, 110.0), meta(0.1)).track_ids.tolist() == [2, 1]  # nearest centre wins
    assert tracker.update(boxes(), meta(0.2)).track_ids.tolist() == []
    assert tracker.update(boxes(115.0), meta(0.5)).track_ids.tolist() == [1]  # 0.4 s unseen: kept
    # 0.6 s of stamps unseen (one update later): forgotten; the new box starts track 3.
    assert tracker.update(boxes(320.0), meta(0.7)).track_ids.tolist() == [3]
