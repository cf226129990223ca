"""The ROS-free core: frames, detections and the pipeline stages. Never imports rclpy."""

from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError, EdgeVisionError, ModelError, SourceError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame

__all__ = [
    "ConfigError",
    "Detections",
    "EdgeVisionError",
    "Event",
    "Frame",
    "ModelError",
    "SourceError",
]
