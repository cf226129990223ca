"""Composed pipeline: every stage in one process, frames passed by reference (zero-copy).

ros2 launch edge_vision pipeline.launch.py [params_file:=/path/pipeline.yaml] [namespace:=cam0] [autostart:=true]
    [layers:=/etc/edge_vision/site.yaml,/etc/edge_vision/device.yaml]

layers: more parameter files applied after params_file, in order (fleet defaults, then site, then device: later
files win, key by key), the same merge as ``edge-vision run a.yaml b.yaml`` and ``edge-vision config show``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _container(context: LaunchContext) -> list[Node]:
    layers = [p.strip() for p in LaunchConfiguration("layers").perform(context).split(",") if p.strip()]
    missing = [p for p in layers if not os.path.isfile(p)]
    if missing:
        raise RuntimeError(f"layers: parameter file(s) not found: {missing}")
    return [
        Node(
            package="edge_vision",
            executable="pipeline_container",
            # No name=: a node-name remap would rename every stage node in the process.
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"), *layers, {"autostart": LaunchConfiguration("autostart")}],
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("edge_vision")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pipeline.yaml")),
            DeclareLaunchArgument("layers", default_value="", description="more parameter files, comma-separated"),
            DeclareLaunchArgument("namespace", default_value=""),
            DeclareLaunchArgument("autostart", default_value="true", description="false: a managed lifecycle node"),
            OpaqueFunction(function=_container),
        ]
    )
