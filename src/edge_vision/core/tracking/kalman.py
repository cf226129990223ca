"""Batched constant-velocity Kalman filter over (cx, cy, aspect, h), as in ByteTrack / DeepSORT.

State per track: ``[cx, cy, a, h, vcx, vcy, va, vh]`` with ``a = w / h``. Noise is scaled by the box height,
with the same weights as the reference (``1/20`` position, ``1/160`` velocity), so large and small objects get
proportionally the same uncertainty. Every method works on N tracks at once: ``mean`` (N, 8),
``cov`` (N, 8, 8). The reference filters one track per call; batching gives identical numbers (the per-track
maths is independent) and removes the Python loop from the hot path.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

STD_WEIGHT_POSITION = 1.0 / 20
STD_WEIGHT_VELOCITY = 1.0 / 160

_NDIM = 4
# x_{k+1} = F x_k with dt = 1 frame (the tracker's nominal period); H picks the (cx, cy, a, h) measurement
# out of the state.
_MOTION = np.eye(2 * _NDIM)
_MOTION[:_NDIM, _NDIM:] = np.eye(_NDIM)


def _diag(variances: F64) -> F64:
    """(N, k) variances -> (N, k, k) diagonal matrices."""
    n, k = variances.shape
    out = np.zeros((n, k, k))
    idx = np.arange(k)
    out[:, idx, idx] = variances
    return out


def xyxy_to_xyah(xyxy: F64) -> F64:
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: F64) -> F64:
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    cx, cy = xyah[:, 0], xyah[:, 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


class KalmanFilterXYAH:
    """Stateless: holds no tracks, only the model. All arrays are float64."""

    def initiate(self, measurement: F64) -> tuple[F64, F64]:
        """New tracks from (N, 4) xyah measurements: zero velocity, height-scaled covariance."""
        n = len(measurement)
        mean = np.concatenate([measurement, np.zeros((n, _NDIM))], axis=1)
        h = measurement[:, 3]
        wp, wv = STD_WEIGHT_POSITION, STD_WEIGHT_VELOCITY
        pos, vel = 2 * wp * h, 10 * wv * h
        std = np.stack([pos, pos, np.full(n, 1e-2), pos, vel, vel, np.full(n, 1e-5), vel], axis=1)
        return mean, _diag(np.square(std))

    def predict(self, mean: F64, cov: F64) -> tuple[F64, F64]:
        """One step (one frame at the nominal period) ahead; returns new arrays, never mutates the inputs."""
        n = len(mean)
        h = mean[:, 3]
        wp, wv = STD_WEIGHT_POSITION, STD_WEIGHT_VELOCITY
        std = np.stack(
            [wp * h, wp * h, np.full(n, 1e-2), wp * h, wv * h, wv * h, np.full(n, 1e-5), wv * h],
            axis=1,
        )
        new_mean = mean @ _MOTION.T
        new_cov = _MOTION @ cov @ _MOTION.T + _diag(np.square(std))
        return new_mean, new_cov

    def project(self, mean: F64, cov: F64) -> tuple[F64, F64]:
        """State -> measurement space, with the (height-scaled) measurement noise added."""
        n = len(mean)
        h = mean[:, 3]
        wp = STD_WEIGHT_POSITION
        std = np.stack([wp * h, wp * h, np.full(n, 1e-1), wp * h], axis=1)
        return mean[:, :_NDIM].copy(), cov[:, :_NDIM, :_NDIM] + _diag(np.square(std))

    def update(self, mean: F64, cov: F64, measurement: F64) -> tuple[F64, F64]:
        """Correct N tracks with their N matched xyah measurements."""
        if len(mean) == 0:
            return mean.copy(), cov.copy()
        projected_mean, projected_cov = self.project(mean, cov)
        # K = P H^T S^-1; S is symmetric positive definite, so K^T = S^-1 (H P) -- a batched solve replaces the
        # reference's per-track Cholesky solve (same result).
        gain = np.swapaxes(np.linalg.solve(projected_cov, cov[:, :_NDIM, :]), 1, 2)  # (N, 8, 4)
        innovation = measurement - projected_mean
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ projected_cov @ np.swapaxes(gain, 1, 2)
        return new_mean, new_cov
