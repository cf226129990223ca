"""The shipped views name what the pipeline really serves. rviz2 and the Foxglove app cannot run here, so each
file is parsed and every topic it names is checked against a live pipeline: the rviz config against the ROS
graph of a composed RosPipeline (rclpy, localhost DDS), the Foxglove layout against the channels (and their
schemas) of the pipeline's Foxglove view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.context import Context

from conftest import CONFIG, REPO
from edge_vision.core import config
from edge_vision.core.foxglove_view import EVENT_SCHEMA, STATS_SCHEMA
from edge_vision.core.runtime.build import Pipeline
from edge_vision.ros.container import RosPipeline

RVIZ = REPO / "config" / "edge_vision.rviz"
LAYOUT = REPO / "config" / "foxglove_layout.json"
# What Foxglove's Image panel takes as an image and as annotations (its documented schemas).
IMAGE_SCHEMAS = {
    "foxglove.CompressedImage",
    "foxglove.RawImage",
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CompressedImage",
}
ANNOTATION_SCHEMAS = {"foxglove.ImageAnnotations"}


def sections() -> dict[str, dict[str, Any]]:
    result = config.load_file(CONFIG)
    result["visualizer"]["video_path"] = ""
    result["events"]["actions"] = {}
    return result


def rviz_displays(document: dict[str, Any]) -> list[dict[str, Any]]:
    displays: list[dict[str, Any]] = document["Visualization Manager"]["Displays"]
    return displays


def test_rviz_config_shows_the_annotated_image_the_pipeline_publishes(ros_context: Context, model: Path) -> None:
    document = yaml.safe_load(RVIZ.read_text(encoding="utf-8"))
    displays = rviz_displays(document)
    images = {d["Topic"]["Value"]: d for d in displays if d["Class"] == "rviz_default_plugins/Image"}
    assert images["/image_annotated"]["Enabled"] is True
    # Best effort: a reliable rviz reader would not match a best-effort writer, and shows only the latest anyway.
    assert all(d["Topic"]["Reliability Policy"] == "Best Effort" for d in images.values())
    assert document["Visualization Manager"]["Global Options"]["Fixed Frame"] == config.resolve("camera")["camera_id"]

    ros = RosPipeline(sections=sections(), context=ros_context)
    try:
        graph = dict(ros.owner.get_topic_names_and_types())
    finally:
        ros.destroy()
    named = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    for topic in named:
        assert graph.get(topic) == ["sensor_msgs/msg/Image"], f"rviz names {topic}; the pipeline publishes {graph}"


@pytest.fixture()
def view_topics(model: Path) -> Iterator[dict[str, str]]:
    run = sections()
    run["pipeline"].update(foxglove=True, foxglove_port=0)
    pipeline = Pipeline(run)
    try:
        assert pipeline.view is not None
        yield pipeline.view.topics
    finally:
        pipeline.close()


def test_foxglove_layout_names_the_channels_of_the_view(view_topics: dict[str, str]) -> None:
    layout = json.loads(LAYOUT.read_text(encoding="utf-8"))
    panels: dict[str, dict[str, Any]] = layout["configById"]
    kinds = {panel_id.split("!")[0]: panel for panel_id, panel in panels.items()}
    assert {"Image", "RawMessages", "DiagnosticSummary", "Plot"} <= set(kinds)

    image_mode = kinds["Image"]["imageMode"]
    assert view_topics[image_mode["imageTopic"]] in IMAGE_SCHEMAS
    assert image_mode["annotations"], "the image panel shows the boxes and rules"
    for topic, settings in image_mode["annotations"].items():
        assert view_topics[topic] in ANNOTATION_SCHEMAS and settings["visible"] is True

    raw_topics = {p["topicPath"] for pid, p in panels.items() if pid.startswith("RawMessages!")}
    assert "/events" in raw_topics and raw_topics <= set(view_topics)
    assert view_topics[kinds["DiagnosticSummary"]["topicToRender"]] == "diagnostic_msgs/msg/DiagnosticArray"

    plotted = [p["value"] for p in kinds["Plot"]["paths"]]
    assert "/stats.fps" in plotted
    for path in plotted:
        topic, _, field = path.partition(".")
        assert view_topics[topic] == "edge_vision.PipelineStats" and field in STATS_SCHEMA["properties"], path
    assert set(EVENT_SCHEMA["properties"]) >= {"kind", "rule", "track_id"}

    # Every panel of configById is placed in the layout tree, and the tree names no other.
    def leaves(node: Any) -> list[str]:
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)
