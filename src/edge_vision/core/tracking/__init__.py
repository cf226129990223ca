"""Multi-object tracking: ByteTrack over a batched constant-velocity Kalman filter (numpy + scipy only)."""

from edge_vision.core.tracking.bytetrack import ByteTrack
from edge_vision.core.tracking.kalman import KalmanFilterXYAH

__all__ = ["ByteTrack", "KalmanFilterXYAH"]
