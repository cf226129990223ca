"""edge_vision: real-time video AI at the edge, as ROS 2 nodes around a ROS-free core."""

__version__ = "0.1.0"
