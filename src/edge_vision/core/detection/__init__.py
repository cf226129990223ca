"""Object detection: letterbox preprocessing, inference backends, model adapters and NMS."""

from edge_vision.core.detection.detector import Detector, DetectorTimings

__all__ = ["Detector", "DetectorTimings"]
