"""One process per stage (camera, detector, tracker, events, visualizer) over ROS topics.

    ros2 launch edge_vision pipeline_nodes.launch.py [params_file:=...] [namespace:=cam0] [autostart:=true]

Large images between processes need shared-memory transport: the bundled Fast DDS profile is given to these
nodes only (never to the rest of a launch that includes this file), unless FASTDDS_DEFAULT_PROFILES_FILE is
already set. Inside the pipeline every input is reliable (nothing is lost between our own nodes) and the
camera paces a file at its own frame rate, so a slower detector is not fed faster than real time.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

STAGES = ("camera", "detector", "tracker", "events", "visualizer")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("edge_vision")
    params = LaunchConfiguration("params_file")
    env = {}
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = os.path.join(share, "config", "fastdds_shm.xml")
    overrides = {"autostart": LaunchConfiguration("autostart")}
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pipeline.yaml")),
            DeclareLaunchArgument("namespace", default_value=""),
            DeclareLaunchArgument("autostart", default_value="true", description="false: managed lifecycle nodes"),
            *[
                Node(
                    package="edge_vision",
                    executable=f"{stage}_node",
                    name=stage,
                    namespace=LaunchConfiguration("namespace"),
                    parameters=[
                        params,
                        overrides,
                        os.path.join(share, "config", "nodes_overrides.yaml"),
                    ],
                    additional_env=env,
                    output="screen",
                )
                for stage in STAGES
            ],
        ]
    )
