"""``Detections``: the one vectorised type every stage speaks (boxes, scores, classes, track ids)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

UNTRACKED = -1


def _empty_tracks(n: int) -> NDArray[np.int64]:
    return np.full(n, UNTRACKED, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Detections:
    """N boxes as parallel numpy arrays, in source-image pixels.

    xyxy: (N, 4) float32, x1 y1 x2 y2. scores: (N,) float32. class_ids: (N,) int32.
    track_ids: (N,) int64, ``UNTRACKED`` (-1) until a tracker assigns one.
    """

    xyxy: NDArray[np.float32]
    scores: NDArray[np.float32]
    class_ids: NDArray[np.int32]
    track_ids: NDArray[np.int64] = field(default_factory=lambda: _empty_tracks(0))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        # Normalise dtypes/shapes once here so every consumer can rely on them.
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, dtype=np.float32).reshape(n, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float32).reshape(n))
        object.__setattr__(self, "class_ids", np.asarray(self.class_ids, dtype=np.int32).reshape(n))
        tracks = self.track_ids if len(self.track_ids) == n else _empty_tracks(n)
        object.__setattr__(self, "track_ids", np.asarray(tracks, dtype=np.int64).reshape(n))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    @classmethod
    def concatenate(cls, parts: Sequence[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
            np.concatenate([p.track_ids for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: NDArray[np.bool_] | NDArray[np.integer] | slice | int) -> Detections:
        """Select rows by boolean mask, index array, slice or single index (kept 2-D)."""
        if isinstance(index, (int, np.integer)):
            index = np.array([index])
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index], self.track_ids[index])

    def with_track_ids(self, track_ids: NDArray[np.int64]) -> Detections:
        return Detections(self.xyxy, self.scores, self.class_ids, track_ids)

    @property
    def centers(self) -> NDArray[np.float32]:
        """(N, 2) box centres."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) * 0.5

    @property
    def bottom_centers(self) -> NDArray[np.float32]:
        """(N, 2) bottom-centre points: where a person or vehicle touches the ground."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5, self.xyxy[:, 3]], axis=1)

    @property
    def is_tracked(self) -> NDArray[np.bool_]:
        return self.track_ids != UNTRACKED
