#!/bin/bash
# The Jetson image's entrypoint: the ROS install and this package's colcon install, then the command.
set -e
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# shellcheck disable=SC1091
source /opt/edge_vision/install/setup.bash
exec "$@"
