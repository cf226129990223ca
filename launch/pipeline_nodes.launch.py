"""One process per stage (camera, detector, tracker, events, visualizer) over ROS topics.

    ros2 launch edge_vision pipeline_nodes.launch.py [params_file:=...] [namespace:=cam0]

Large images between processes need shared-memory transport: the bundled Fast DDS profile is applied
unless FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

STAGES = ("camera", "detector", "tracker", "events", "visualizer")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("edge_vision")
    params = LaunchConfiguration("params_file")
    profile = os.path.join(share, "config", "fastdds_shm.xml")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pipeline.yaml")),
            DeclareLaunchArgument("namespace", default_value=""),
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", default_value=profile),
            ),
            *[
                Node(
                    package="edge_vision",
                    executable=f"{stage}_node",
                    name=stage,
                    namespace=LaunchConfiguration("namespace"),
                    parameters=[params],
                    output="screen",
                )
                for stage in STAGES
            ],
        ]
    )
