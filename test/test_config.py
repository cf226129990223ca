"""Configuration: every bundled file validates (JSON Schema and loader), and each kind of mistake gets one
line naming the parameter, from the library and from ``edge-vision run`` (exit 2, no traceback)."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import CONFIG, LABELS, REPO, cli
from edge_vision.core import config
from edge_vision.core.errors import ConfigError
from edge_vision.core.runtime.build import build_rules, build_tracker
from edge_vision.core.schema import json_schema

# Pipeline parameter files; cameras.*.yaml are camera lists for launch/cameras.launch.py.
CONFIG_FILES = sorted(p for p in (REPO / "config").glob("*.yaml") if not p.name.startswith("cameras."))
Document = dict[str, Any]


def write(tmp_path: Path, document: object, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def bundled() -> Document:
    document: Document = yaml.safe_load(CONFIG.read_text())
    return document


def params(document: Document, section: str) -> dict[str, Any]:
    body: dict[str, Any] = document[f"/**/{section}"]["ros__parameters"]
    return body


def load_error(tmp_path: Path, document: Document) -> str:
    """The one-line message ``load_file`` raises for ``document``."""
    with pytest.raises(ConfigError) as caught:
        config.load_file(write(tmp_path, document))
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# -- every file we ship ------------------------------------------------------------------------------------


def test_config_folder_has_files() -> None:
    assert CONFIG in CONFIG_FILES


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_config_file_matches_the_schema_and_loads(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert errors == []
    sections = config.load_file(path)
    assert set(sections) == set(config.SCHEMA)


def test_bundled_config_is_valid() -> None:
    sections = config.load_file(CONFIG)
    assert sections["detector"]["confidence"] == 0.3
    assert sections["detector"]["classes"] == []  # the [""] placeholder means "all"
    assert set(sections["events"]["rules"]) == {"crossing", "right_path"}
    assert sections["events"]["rules"]["crossing"]["type"] == "line"
    assert sections["events"]["actions"]["events_log"] == {"type": "jsonl", "path": "events.jsonl", "flush_every": 1}
    assert sections["tracker"]["track_thresh"] == 0.5  # the plugin's parameters sit beside its selector


def test_round_trip_through_ros_parameter_format(tmp_path: Path) -> None:
    sections = config.load_file(CONFIG)
    again = config.load_file(config.write_ros_parameters(sections, tmp_path / "p.yaml"))
    # A standalone visualizer draws the events stage's rules: to_ros_parameters copies them across.
    assert again["visualizer"]["rules"] == sections["events"]["rules"]
    assert {**again, "visualizer": {**again["visualizer"], "rules": {}}} == sections
    assert config.load_file(config.write_ros_parameters(again, tmp_path / "q.yaml")) == again  # a fixed point


# -- the JSON Schema ---------------------------------------------------------------------------------------


def _camera_override(d: Document) -> None:
    params(d, "camera")["front"] = {"colour": 1}
    params(d, "pipeline")["cameras"] = ["front"]


SCHEMA_REJECTS: dict[str, Callable[[Document], None]] = {
    "unknown section": lambda d: d.update(kamera={"ros__parameters": {}}),
    "unknown key in a section": lambda d: params(d, "tracker").update(colour="red"),
    "unknown key in the events section": lambda d: params(d, "events").update(colour="red"),
    "unknown key in the camera section": lambda d: params(d, "camera").update(colour="red"),
    "unknown key in a per-camera override": _camera_override,
    "unknown key in a rule": lambda d: params(d, "events")["rules"]["crossing"].update(colour="red"),
    "unknown rule type": lambda d: params(d, "events")["rules"]["crossing"].update(type="circle"),
    "unknown tracker plugin": lambda d: params(d, "tracker").update(tracker="sort"),
    "value out of range": lambda d: params(d, "detector").update(confidence=1.5),
    "camera value out of range": lambda d: params(d, "camera").update(every_nth=0),
    "wrong type": lambda d: params(d, "camera").update(loop="yes"),
}


@pytest.mark.parametrize("case", SCHEMA_REJECTS)
def test_schema_rejects(case: str) -> None:
    document = bundled()
    SCHEMA_REJECTS[case](document)
    assert list(validator().iter_errors(document)), f"schema accepted: {case}"


def test_schema_accepts_every_documented_form() -> None:
    check = validator()
    document = bundled()
    params(document, "pipeline")["cameras"] = ["front", "back"]
    params(document, "camera")["front"] = {"uri": "front.mp4", "every_nth": 2}
    assert list(check.iter_errors(document)) == []
    # Section bodies without ros__parameters, plain section names, rules as a list.
    plain = {
        "camera": {"uri": "x.mp4", "every_nth": 3},
        "tracker": {"track_thresh": 0.4},  # selector left out: the default plugin's parameters
        "events": {"rules": [{"type": "zone", "polygon": [0.0, 0.0, 10.0, 0.0, 10.0, 10.0]}]},
    }
    assert list(check.iter_errors(plain)) == []


# -- the loader: one line naming the parameter ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("detector", "confidence", 1.5, r"detector.confidence must be <= 1.0, got 1.5"),
        ("detector", "confidence", "high", r"detector.confidence must be of type float"),
        ("camera", "every_nth", 0, r"camera.every_nth must be >= 1"),
        ("camera", "fps", 30, r"unknown parameter\(s\) camera.fps"),
        ("tracker", "qos_reliability", "sometimes", r"tracker.qos_reliability must be one of"),
        ("tracker", "colour", "red", r"unknown parameter\(s\) tracker.colour; known: \["),
        ("pipeline", "policy", "leaky", r"pipeline.policy must be one of \['block', 'drop_oldest', 'drop_newest'\]"),
    ],
)
def test_bad_values_name_the_parameter(tmp_path: Path, section: str, key: str, value: object, message: str) -> None:
    document = bundled()
    params(document, section)[key] = value
    with pytest.raises(ConfigError, match=message):
        config.load_file(write(tmp_path, document))


def _door(d: Document, **values: Any) -> None:
    params(d, "events")["rules"]["door"] = {
        "type": "zone",
        "polygon": [10.0, 10.0, 100.0, 10.0, 100.0, 100.0],
        **values,
    }


def test_rule_names_must_list_every_rule(tmp_path: Path) -> None:
    document = bundled()
    params(document, "events")["rule_names"] = ["crossing"]
    message = load_error(tmp_path, document)
    assert message.endswith(
        "events.rules.right_path is defined but not listed in events.rule_names ['crossing']: "
        "list it, delete it, or leave rule_names empty to run every rule"
    )
    params(document, "events")["rule_names"] = ["crossing", "ghost", "right_path"]
    assert "events.rule_names lists ['ghost'] but events.rules has no entry" in load_error(tmp_path, document)
    # Listed: they run in the listed order. Empty: every rule, in file order.
    params(document, "events")["rule_names"] = ["right_path", "crossing"]
    assert list(config.load_file(write(tmp_path, document))["events"]["rules"]) == ["right_path", "crossing"]


def test_unknown_key_in_a_rule_names_the_rule_and_key(tmp_path: Path) -> None:
    document = bundled()
    _door(document, colour="red")
    message = load_error(tmp_path, document)
    assert "unknown parameter(s) events.rules.door.colour for rules plugin 'zone'; it takes [" in message


def test_rule_without_a_type(tmp_path: Path) -> None:
    document = bundled()
    params(document, "events")["rules"]["door"] = {"polygon": [1.0, 1.0, 5.0, 1.0, 5.0, 5.0]}
    assert "events.rules.door.type is missing: one of [" in load_error(tmp_path, document)


def test_unknown_sections_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load_file(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_file(write(tmp_path, "camera: [unclosed"))
    with pytest.raises(ConfigError, match=r"unknown section 'kamera'; expected \['camera', "):
        config.load_file(write(tmp_path, {"kamera": {}}))


def test_tracker_low_thresh_above_track_thresh() -> None:
    tracker = config.resolve("tracker", {"track_thresh": 0.5, "low_thresh": 0.7})  # each value is in range
    with pytest.raises(ConfigError) as caught:
        build_tracker(tracker)
    assert str(caught.value) == "tracker: low_thresh (0.7) must be <= track_thresh (0.5)"


def _built_rule_error(polygon: list[float]) -> str:
    rules = config.resolve("events", {"rules": {"door": {"type": "zone", "polygon": polygon}}})["rules"]
    with pytest.raises(ConfigError) as caught:
        for rule in build_rules(rules, ["person"]):
            rule.check_frame(768, 576)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_empty_polygon() -> None:
    assert _built_rule_error([]) == (
        "events.rules.door: rule 'door': polygon is empty: give >= 3 [x, y] point(s) as a flat [x1, y1, ...] list"
    )


def test_geometry_outside_the_frame() -> None:
    message = _built_rule_error([2000.0, 100.0, 2100.0, 100.0, 2100.0, 200.0])
    assert message == (
        "rule 'door': polygon point (2000, 100) is outside the 768x576 source frame (x in 0..768, y in 0..576)"
    )


def test_normalised_coordinates_get_a_pixel_hint() -> None:
    message = _built_rule_error([0.1, 0.1, 0.9, 0.1, 0.9, 0.9])
    assert message.startswith("rule 'door': polygon lie within 0..1 of a 768x576 frame")
    assert message.endswith("coordinates are source pixels, not normalised")


def test_per_camera_overrides(tmp_path: Path) -> None:
    document = bundled()
    params(document, "camera")["front"] = {"every_nth": 2}
    assert load_error(tmp_path, document).endswith(
        "camera.front configures a camera not listed in pipeline.cameras ['']"
    )
    params(document, "pipeline")["cameras"] = ["front", "back"]
    sections = config.load_file(write(tmp_path, document))
    cameras = config.camera_sections(sections)
    assert list(cameras) == ["front", "back"]
    assert (cameras["front"]["every_nth"], cameras["back"]["every_nth"]) == (2, 1)
    assert (cameras["front"]["camera_id"], cameras["back"]["camera_id"]) == ("front", "back")
    params(document, "camera")["front"] = {"every_nth": 0}
    assert load_error(tmp_path, document).endswith("camera.front.every_nth must be >= 1, got 0")
    params(document, "camera")["front"] = {"colour": 1}
    assert "unknown parameter(s) camera.front.colour" in load_error(tmp_path, document)


# -- through the CLI: exit 2, one line, no traceback ----------------------------------------------------------


def _rule_names(d: Document) -> None:
    params(d, "events")["rule_names"] = ["crossing"]


def _low_thresh(d: Document) -> None:
    params(d, "tracker")["low_thresh"] = 0.7


def _unknown_camera(d: Document) -> None:
    params(d, "camera")["front"] = {"every_nth": 2}


CLI_LOAD_ERRORS: dict[str, tuple[Callable[[Document], None], str]] = {
    "bad value": (lambda d: params(d, "detector").update(iou=-1.0), "detector.iou must be >= 0.0"),
    "unlisted rule": (_rule_names, "events.rules.right_path is defined but not listed in events.rule_names"),
    "unknown key": (lambda d: params(d, "tracker").update(colour="red"), "unknown parameter(s) tracker.colour"),
    "unknown rule key": (lambda d: _door(d, colour="red"), "events.rules.door.colour"),
    "low_thresh": (_low_thresh, "tracker: low_thresh (0.7) must be <= track_thresh (0.5)"),
    "empty polygon": (lambda d: _door(d, polygon=[]), "events.rules.door: rule 'door': polygon is empty"),
    "unknown camera": (_unknown_camera, "camera.front configures a camera not listed in pipeline.cameras"),
}


def run_cli(tmp_path: Path, document: Document, *extra: str) -> subprocess.CompletedProcess[str]:
    path = write(tmp_path, document)
    return subprocess.run(
        cli("run", str(path), "--output-dir", str(tmp_path / "out"), *extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edge-vision: error:")]


@pytest.mark.parametrize("case", CLI_LOAD_ERRORS)
def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path, case: str) -> None:
    mutate, expected = CLI_LOAD_ERRORS[case]
    document = bundled()
    mutate(document)
    result = run_cli(tmp_path, document)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # Found before anything runs: the one line is all there is on stderr, and nothing was written.
    assert result.stderr.splitlines() == error_lines(result.stderr), result.stderr
    assert len(error_lines(result.stderr)) == 1 and expected in result.stderr, result.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        (
            [2000.0, 100.0, 2100.0, 100.0, 2100.0, 200.0],
            "rule 'door': polygon point (2000, 100) is outside the 768x576",
        ),
        ([0.1, 0.1, 0.9, 0.1, 0.9, 0.9], "rule 'door': polygon lie within 0..1 of a 768x576 frame"),
    ],
    ids=["outside", "normalised"],
)
def test_cli_reports_geometry_that_does_not_fit_the_video(tmp_path: Path, polygon: list[float], expected: str) -> None:
    document = bundled()
    _door(document, polygon=polygon)
    result = run_cli(tmp_path, document, "--max-frames", "5")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_cli_reports_unreadable_video_and_model(tmp_path: Path) -> None:
    result = subprocess.run(cli("run", "--video", str(tmp_path / "x.mp4")), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "video file not found" in result.stderr
    assert len(error_lines(result.stderr)) == 1 and "Traceback" not in result.stderr
    corrupt = tmp_path / "m.onnx"
    corrupt.write_bytes(b"junk" * 100)
    result = subprocess.run(
        cli("run", "--model", str(corrupt), "--labels", str(LABELS)), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "cannot load model" in result.stderr and "m.onnx" in result.stderr
    assert len(error_lines(result.stderr)) == 1 and "Traceback" not in result.stderr


def test_resolve_all_leaves_its_input_alone() -> None:
    document = bundled()
    before = copy.deepcopy(document)
    assert config.resolve_all(document) == config.load_file(CONFIG)
    assert document == before
