"""Configuration: the bundled file validates, and each kind of mistake gets a message naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CONFIG, cli
from edge_vision.core import config
from edge_vision.core.errors import ConfigError


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def bundled() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_bundled_config_is_valid() -> None:
    sections = config.load_file(CONFIG)
    assert sections["detector"]["confidence"] == 0.3
    assert sections["detector"]["classes"] == []  # the [""] placeholder means "all"
    assert set(sections["events"]["rules"]) == {"crossing", "right_path"}


def test_round_trip_through_ros_parameter_format(tmp_path: Path) -> None:
    sections = config.load_file(CONFIG)
    again = config.load_file(config.write_ros_parameters(sections, tmp_path / "p.yaml"))
    assert again == sections


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("detector", "confidence", 1.5, r"detector.confidence must be <= 1.0, got 1.5"),
        ("detector", "confidence", "high", r"detector.confidence must be of type float"),
        ("camera", "every_nth", 0, r"camera.every_nth must be >= 1"),
        ("camera", "fps", 30, r"unknown parameter\(s\) camera.fps"),
        ("tracker", "qos_reliability", "sometimes", r"tracker.qos_reliability must be one of"),
    ],
)
def test_bad_values_name_the_parameter(tmp_path: Path, section: str, key: str, value: object, message: str) -> None:
    document = bundled()
    document[section]["ros__parameters"][key] = value
    with pytest.raises(ConfigError, match=message):
        config.load_file(write(tmp_path, document))


def test_rule_errors(tmp_path: Path) -> None:
    document = bundled()
    document["events"]["ros__parameters"]["rule_names"] = ["crossing", "ghost"]
    with pytest.raises(ConfigError, match=r"rule_names lists \['ghost'\]"):
        config.load_file(write(tmp_path, document))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load_file(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_file(write(tmp_path, "camera: [unclosed"))
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['kamera'\]"):
        config.load_file(write(tmp_path, {"kamera": {}}))


def test_cli_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    document = bundled()
    document["detector"]["ros__parameters"]["iou"] = -1.0
    result = subprocess.run(cli("run", str(write(tmp_path, document))), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "edge-vision: error:" in result.stderr and "detector.iou must be >= 0.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_unreadable_video_and_model(tmp_path: Path) -> None:
    result = subprocess.run(cli("run", "--video", str(tmp_path / "x.mp4")), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "video file not found" in result.stderr
    corrupt = tmp_path / "m.onnx"
    corrupt.write_bytes(b"junk" * 100)
    result = subprocess.run(cli("run", "--model", str(corrupt)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot load model" in result.stderr and "m.onnx" in result.stderr
