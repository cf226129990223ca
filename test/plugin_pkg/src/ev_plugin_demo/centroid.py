"""``CentroidTracker``: keeps ids by nearest box centre. Deliberately simple: an example of a tracker plugin."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edge_vision.core.config import Param
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.frame import FrameMeta


class CentroidTracker:
    """Each detection takes the id of the nearest track of its class whose centre is within ``max_distance``
    pixels (greedy, closest pairs first); the rest start new tracks. A track unseen for ``max_age_s`` seconds
    of frame stamps is forgotten."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("max_distance", 50.0, "pixels a centre may move between two updates and keep its id", min=1.0),
        Param("max_age_s", 1.0, "seconds (of frame stamps) an unseen track is kept", min=0.0),
        Param("min_score", 0.3, "detections below this are ignored", min=0.0, max=1.0),
    )

    def __init__(self, max_distance: float = 50.0, max_age_s: float = 1.0, min_score: float = 0.3) -> None:
        if max_distance <= 0:
            raise ConfigError(f"max_distance must be > 0, got {max_distance}")
        self.max_distance = max_distance
        self.max_age_ns = int(max_age_s * 1e9)
        self.min_score = min_score
        self.reset()

    def reset(self) -> None:
        self._next_id = 1
        # id -> (centre x, centre y, class id, stamp of the last match)
        self._tracks: dict[int, tuple[float, float, int, int]] = {}

    def update(self, detections: Detections, meta: FrameMeta) -> Detections:
        now = meta.stamp_ns
        self._tracks = {i: t for i, t in self._tracks.items() if now - t[3] <= self.max_age_ns}
        kept = detections[detections.scores >= self.min_score]
        centres = kept.centers.astype(np.float64)
        ids = np.full(len(kept), -1, dtype=np.int64)
        track_ids = list(self._tracks)
        if track_ids and len(kept):
            known = np.array([self._tracks[i][:2] for i in track_ids], dtype=np.float64)
            distance = np.linalg.norm(centres[:, None, :] - known[None, :, :], axis=2)
            same_class = kept.class_ids[:, None] == np.array([self._tracks[i][2] for i in track_ids])[None, :]
            distance[~same_class] = np.inf
            taken: set[int] = set()
            for flat in np.argsort(distance, axis=None):
                row, col = divmod(int(flat), len(track_ids))
                if distance[row, col] > self.max_distance:
                    break
                if ids[row] >= 0 or col in taken:
                    continue
                ids[row] = track_ids[col]
                taken.add(col)
        for row in range(len(kept)):
            if ids[row] < 0:
                ids[row] = self._next_id
                self._next_id += 1
            x, y = centres[row]
            self._tracks[int(ids[row])] = (float(x), float(y), int(kept.class_ids[row]), now)
        return kept.with_track_ids(ids)
