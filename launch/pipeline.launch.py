"""Composed pipeline: every stage in one process, frames passed by reference (zero-copy).

ros2 launch edge_vision pipeline.launch.py [params_file:=/path/pipeline.yaml] [namespace:=cam0] [autostart:=true]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("edge_vision")
    params = LaunchConfiguration("params_file")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pipeline.yaml")),
            DeclareLaunchArgument("namespace", default_value=""),
            DeclareLaunchArgument("autostart", default_value="true", description="false: a managed lifecycle node"),
            Node(
                package="edge_vision",
                executable="pipeline_container",
                # No name=: a node-name remap would rename every stage node in the process.
                namespace=LaunchConfiguration("namespace"),
                parameters=[params, {"autostart": LaunchConfiguration("autostart")}],
                output="screen",
            ),
        ]
    )
