"""N cameras from one YAML list, each under its own namespace with its own source and frame_id.

    ros2 launch edge_vision cameras.launch.py cameras_file:=cameras.yaml [params_file:=...] [mode:=shared]

cameras.yaml (see config/cameras.example.yaml):

    cameras:
      - {namespace: front, uri: /data/front.mp4, frame_id: front_camera}
      - {namespace: back, uri: "rtsp://10.0.0.7/stream", frame_id: back_camera}

mode:
  shared    one process, one detector shared by every camera (pipeline.cameras); topics /<namespace>/...
  composed  one composed process per camera (its own detector)
  nodes     one process per stage per camera, over topics (shared-memory transport for images)
Every camera also takes any other camera parameter (every_nth, rate, options...) from its list entry.
"""

import os
import tempfile

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

STAGES = ("camera", "detector", "tracker", "events", "visualizer")


def _cameras(path: str) -> list[dict[str, object]]:
    with open(path, encoding="utf-8") as f:
        document = yaml.safe_load(f) or {}
    cameras = document.get("cameras") if isinstance(document, dict) else None
    if not isinstance(cameras, list) or not cameras:
        raise RuntimeError(f"{path}: expected `cameras:` with a list of {{namespace, uri, frame_id}} entries")
    for index, camera in enumerate(cameras):
        if not isinstance(camera, dict) or not camera.get("namespace"):
            raise RuntimeError(f"{path}: cameras[{index}] needs a namespace")
    return cameras


def _camera_values(camera: dict[str, object]) -> dict[str, object]:
    values = {k: v for k, v in camera.items() if k not in ("namespace", "frame_id")}
    values["camera_id"] = camera.get("frame_id") or camera["namespace"]
    return values


def _write(document: dict[str, object]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="edge_vision_", delete=False) as handle:
        yaml.safe_dump(document, handle)
    return handle.name


def _launch(context: LaunchContext) -> list[Node]:
    share = get_package_share_directory("edge_vision")
    params = LaunchConfiguration("params_file").perform(context)
    mode = LaunchConfiguration("mode").perform(context)
    cameras = _cameras(LaunchConfiguration("cameras_file").perform(context))
    if mode == "shared":
        names = [str(c["namespace"]) for c in cameras]
        overrides = {
            "/**/pipeline": {"ros__parameters": {"cameras": names}},
            "/**/camera": {"ros__parameters": {str(c["namespace"]): _camera_values(c) for c in cameras}},
        }
        return [
            Node(
                package="edge_vision",
                executable="pipeline_container",
                parameters=[params, _write(overrides)],
                output="screen",
            )
        ]
    if mode not in ("composed", "nodes"):
        raise RuntimeError(f"mode must be shared, composed or nodes, got {mode!r}")
    env = {}
    if mode == "nodes" and "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = os.path.join(share, "config", "fastdds_shm.xml")
    nodes = []
    for camera in cameras:
        overrides = _write({"/**/camera": {"ros__parameters": _camera_values(camera)}})
        if mode == "composed":
            nodes.append(
                Node(
                    package="edge_vision",
                    executable="pipeline_container",
                    namespace=str(camera["namespace"]),
                    parameters=[params, overrides],
                    output="screen",
                )
            )
            continue
        for stage in STAGES:
            nodes.append(
                Node(
                    package="edge_vision",
                    executable=f"{stage}_node",
                    name=stage,
                    namespace=str(camera["namespace"]),
                    parameters=[params, os.path.join(share, "config", "nodes_overrides.yaml"), overrides],
                    additional_env=env,
                    output="screen",
                )
            )
    return nodes


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("edge_vision")
    return LaunchDescription(
        [
            DeclareLaunchArgument("cameras_file", description="YAML with `cameras:` [{namespace, uri, frame_id}]"),
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pipeline.yaml")),
            DeclareLaunchArgument("mode", default_value="shared", description="shared | composed | nodes"),
            OpaqueFunction(function=_launch),
        ]
    )
