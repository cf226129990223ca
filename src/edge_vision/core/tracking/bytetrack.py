"""ByteTrack (Zhang et al., ECCV 2022), vectorised, following the reference ``BYTETracker`` (ifzhang/ByteTrack)
and supervision's port of it.

Per ``update``:

1. Detections split into high (score > ``track_thresh``) and low (``low_thresh`` < score <= ``track_thresh``).
2. Confirmed and lost tracks are Kalman-predicted to this frame and matched to the high detections on IoU
   distance fused with the detection score (``1 - IoU * score``), gated by ``match_thresh``.
3. Tracked tracks left over are matched to the *low* detections (plain IoU distance, gate 0.5): occluded or
   blurred objects keep their track instead of being dropped -- the "BYTE" idea. Tracks still unmatched become
   lost; low detections never start tracks.
4. Unconfirmed tracks (seen on one frame only) get the remaining high detections (gate 0.7); unmatched ones are
   deleted, so a single-frame false positive never becomes a track.
5. Remaining high detections scoring >= ``new_track_thresh`` start unconfirmed tracks (confirmed at once on the
   very first frame, as in the reference). Lost tracks unseen for more than ``track_buffer`` frames are dropped,
   and tracked/lost duplicates (IoU > 0.85) are resolved in favour of the older track.

Deliberate differences from the reference, each small:

* Time comes from stamps (``FrameMeta.stamp_ns``), never from update counts or sequence numbers. A "frame" is
  the nominal period: ``1 / frame_rate``, or with ``frame_rate`` 0 the smallest positive gap between update
  stamps seen so far. An update ``dt`` after the previous one predicts the filter ``max(1, round(dt / period))``
  frames ahead, one frame at a time, and the lost buffer counts frames the same way; so ``every_nth``, dropped
  messages and composed or standalone runs associate as if every frame had been seen (minus the missing
  measurements). With evenly spaced stamps every update is one frame: the reference exactly. Tracks keep the
  stamps of their first and last detection instead of frame ids (the duplicate check compares their spans).
* ``track_buffer`` is in frames at the nominal rate, as given; the reference scales it by ``frame_rate / 30``
  (the same at 30 fps).
* Bad thresholds raise ``ConfigError`` naming the parameter (the reference does not check them).
* ``class_aware``: a track only matches detections of its own class (and only de-duplicates against tracks of
  its own class). The reference is class-agnostic; ``class_aware=False`` restores that.
* Public ``track_ids`` are issued when a track is *confirmed* (as supervision's external ids), so the ids seen
  downstream are 1, 2, 3... with no holes left by one-frame false positives. They are never reused until
  ``reset()``.
* A detection scoring exactly ``track_thresh`` counts as low (the reference drops it from both sets).
* IoU uses continuous coordinates (no ``+1`` pixel convention), as supervision does.
* Boxes with non-positive width/height or non-finite coordinates are ignored (they have no IoU with anything
  and would make the height-scaled Kalman noise singular).
* The returned boxes are the matched *detection* boxes (supervision's behaviour), in the input detection order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from edge_vision.core.config import Param
from edge_vision.core.detections import UNTRACKED, Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.tracking.kalman import F64, KalmanFilterXYAH, xyah_to_xyxy, xyxy_to_xyah

I64 = NDArray[np.int64]

# Gates of the reference that it does not expose as arguments.
SECOND_MATCH_THRESH = 0.5  # low-score association, plain IoU distance
UNCONFIRMED_MATCH_THRESH = 0.7  # unconfirmed tracks vs leftover high detections
DUPLICATE_IOU_DISTANCE = 0.15  # tracked vs lost closer than this (IoU > 0.85) are the same object

_TRACKED = np.int8(1)
_LOST = np.int8(2)
_FORBIDDEN = 1e6  # cost of a pair that must never match (class mismatch)


@dataclass(slots=True)
class _Tracks:
    """All live tracks as parallel arrays (struct of arrays); row order is creation order."""

    mean: F64  # (T, 8) Kalman state
    cov: F64  # (T, 8, 8)
    state: NDArray[np.int8]  # _TRACKED or _LOST
    activated: NDArray[np.bool_]  # confirmed (reference ``is_activated``)
    track_id: I64  # public id, UNTRACKED until confirmed
    start: I64  # stamp (ns) the track was created at
    end: I64  # stamp (ns) of its last matched detection
    score: NDArray[np.float32]  # of the last matched detection
    class_id: NDArray[np.int32]
    det: I64  # index of the matched detection in the latest update, -1 if none

    @classmethod
    def empty(cls) -> _Tracks:
        return cls(
            np.zeros((0, 8)),
            np.zeros((0, 8, 8)),
            np.zeros(0, np.int8),
            np.zeros(0, np.bool_),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return len(self.mean)

    def take(self, index: NDArray[np.bool_] | NDArray[np.intp] | I64) -> _Tracks:
        return _Tracks(*(getattr(self, f.name)[index] for f in fields(self)))

    def append(self, other: _Tracks) -> _Tracks:
        return _Tracks(*(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))


def box_iou(a: F64, b: F64) -> F64:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def linear_assignment(cost: F64, thresh: float) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Optimal assignment where a pair is only worth taking if its cost is <= ``thresh``.

    Returns (matches (K, 2) [row, col], unmatched rows, unmatched cols). The reference calls
    ``lap.lapjv(cost, extend_cost=True, cost_limit=thresh)``, which pads the matrix with dummy rows/columns
    costing ``thresh / 2``; the same padding with scipy gives the same optimum (a plain assignment followed by
    a threshold filter does not: it may spend a good pair to enable a bad one that is then discarded).
    """
    n, m = cost.shape
    rows_ok = (cost <= thresh).any(axis=1)
    cols_ok = (cost <= thresh).any(axis=0)
    rows, cols = np.flatnonzero(rows_ok), np.flatnonzero(cols_ok)
    matches = np.zeros((0, 2), np.intp)
    if len(rows) and len(cols):
        sub = cost[np.ix_(rows, cols)]
        r, c = sub.shape
        ext = np.full((r + c, r + c), thresh / 2.0)
        ext[r:, c:] = 0.0
        ext[:r, :c] = sub
        ri, ci = linear_sum_assignment(ext)
        keep = (ri < r) & (ci < c)
        ri, ci = ri[keep], ci[keep]
        keep = sub[ri, ci] <= thresh
        matches = np.stack([rows[ri[keep]], cols[ci[keep]]], axis=1).astype(np.intp)
    unmatched_rows = np.setdiff1d(np.arange(n), matches[:, 0]).astype(np.intp)
    unmatched_cols = np.setdiff1d(np.arange(m), matches[:, 1]).astype(np.intp)
    return matches, unmatched_rows, unmatched_cols


class ByteTrack:
    """ByteTrack multi-object tracker implementing the ``Tracker`` protocol (plus ``predict``).

    Args:
        track_thresh: detections scoring above this are "high" and go to the first association.
        low_thresh: detections scoring above this (and <= track_thresh) may only extend existing tracks.
        new_track_thresh: minimum score for an unmatched high detection to start a track (reference det_thresh).
        match_thresh: maximum first-stage cost (``1 - IoU``, or ``1 - IoU * score`` when fused) to match.
        track_buffer: frames (at the nominal rate) a lost track is kept, and may be re-found, after its last
            detection.
        frame_rate: the source's nominal fps, which sets how many frames a stamp gap is; 0 = the smallest
            positive gap between update stamps seen so far. Set it when the tracker only ever sees every Nth
            frame (``every_nth``: the estimate would take N frames as one), or when stamps jitter by more than
            a tenth of the period (arrival stamps: one short gap makes every later gap several frames).
        fuse_score: multiply IoU by the detection score in the high/unconfirmed associations (reference non-MOT20).
        class_aware: a track only ever matches detections of the class it was started with.
    """

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("track_thresh", 0.5, "detections above this start/extend tracks first", min=0.0, max=1.0),
        Param("low_thresh", 0.1, "low-score detections above this only extend tracks", min=0.0, max=1.0),
        Param("new_track_thresh", 0.6, "minimum score to start a new track", min=0.0, max=1.0),
        Param("match_thresh", 0.8, "IoU-distance gate for association", min=0.0, max=1.0),
        Param("track_buffer", 30, "frames at the nominal frame rate a lost track is kept", min=0, max=100000),
        Param("frame_rate", 0.0, "nominal source fps (0 = the smallest stamp gap seen is one frame)", min=0.0),
    )

    def __init__(
        self,
        track_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.8,
        track_buffer: int = 30,
        frame_rate: float = 0.0,
        fuse_score: bool = True,
        class_aware: bool = True,
    ) -> None:
        for key, value in (
            ("track_thresh", track_thresh),
            ("low_thresh", low_thresh),
            ("new_track_thresh", new_track_thresh),
            ("match_thresh", match_thresh),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1], got {value}")
        if low_thresh > track_thresh:
            raise ConfigError(f"low_thresh ({low_thresh}) must be <= track_thresh ({track_thresh})")
        if track_buffer < 0:
            raise ConfigError(f"track_buffer must be >= 0, got {track_buffer}")
        if not (math.isfinite(frame_rate) and frame_rate >= 0.0):
            raise ConfigError(f"frame_rate must be a finite number >= 0 (0 = from the stamps), got {frame_rate}")
        self.track_thresh = float(track_thresh)
        self.low_thresh = float(low_thresh)
        self.new_track_thresh = float(new_track_thresh)
        self.match_thresh = float(match_thresh)
        self.track_buffer = int(track_buffer)
        self.frame_rate = float(frame_rate)
        self.fuse_score = bool(fuse_score)
        self.class_aware = bool(class_aware)
        self.kalman = KalmanFilterXYAH()
        self.reset()

    def reset(self) -> None:
        """Forget every track (and the estimated frame period); ids restart at 1."""
        self._tracks = _Tracks.empty()
        self._updates = 0  # reference ``frame_id``: tracks started on the first update are confirmed at once
        self._last_stamp: int | None = None
        self._period_ns: float | None = 1e9 / self.frame_rate if self.frame_rate > 0 else None
        self._next_id = 1

    # -- time ------------------------------------------------------------------------------------------------

    def _frames(self, dt_ns: I64, period: float | None) -> I64:
        """Stamp differences as whole frames at ``period`` (rounded: stamps jitter). Without a period, every
        stamp seen so far was the same, so no time has passed."""
        if period is None:
            return np.zeros_like(dt_ns)
        return np.rint(dt_ns / period).astype(np.int64)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _predict(self, mean: F64, cov: F64, lost: NDArray[np.bool_], steps: int) -> tuple[F64, F64]:
        """Advance ``steps`` frames. Lost tracks have their height velocity zeroed before each step, as the
        reference does (a box seen shrinking must not vanish while unobserved). Stepping frame by frame
        (rather than one big step) reproduces the process noise of an unskipped run exactly; ``steps`` is at
        most ``track_buffer + 1`` because older tracks have been dropped."""
        for _ in range(steps):
            if lost.any():
                mean = mean.copy()
                mean[lost, 7] = 0.0
            mean, cov = self.kalman.predict(mean, cov)
        return mean, cov

    def _cost(
        self,
        t: _Tracks,
        rows: NDArray[np.intp],
        dets: NDArray[np.intp],
        det_xyxy: F64,
        detections: Detections,
        fuse: bool,
    ) -> F64:
        """IoU distance (optionally score-fused) from tracks ``rows`` of ``t`` to detections ``dets``."""
        if len(rows) == 0 or len(dets) == 0:
            return np.zeros((len(rows), len(dets)))
        iou = box_iou(xyah_to_xyxy(t.mean[rows, :4]), det_xyxy[dets])
        if fuse:
            iou = iou * detections.scores[dets].astype(np.float64)[None, :]
        cost = 1.0 - iou
        if self.class_aware:
            same = t.class_id[rows][:, None] == detections.class_ids[dets][None, :]
            cost = np.where(same, cost, _FORBIDDEN)
        return cost

    # -- Tracker protocol ------------------------------------------------------------------------------------

    def update(self, detections: Detections, meta: FrameMeta | Frame) -> Detections:
        """Associate the detections of the frame stamped ``meta.stamp_ns``; return those that belong to
        confirmed tracks, ids set."""
        stamp = int(meta.stamp_ns)
        dt = 0 if self._last_stamp is None else stamp - self._last_stamp
        if self.frame_rate <= 0 and dt > 0 and (self._period_ns is None or dt < self._period_ns):
            self._period_ns = float(dt)
        period = self._period_ns
        steps = max(1, int(self._frames(np.array([dt]), period)[0]))
        self._last_stamp = stamp
        self._updates += 1
        buffer = self.track_buffer

        xyxy = detections.xyxy.astype(np.float64)
        scores = detections.scores
        valid = np.isfinite(xyxy).all(axis=1) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        valid &= scores > self.low_thresh
        high = np.flatnonzero(valid & (scores > self.track_thresh))
        low = np.flatnonzero(valid & (scores <= self.track_thresh))

        # Tracks that have now missed more than track_buffer frames cannot be re-found. With an update every
        # frame this never fires here (step 5 below already dropped them); with gaps it keeps the buffer in
        # frames rather than in updates.
        t = self._tracks.take(self._frames(stamp - self._tracks.end, period) - 1 <= buffer)
        t.det = np.full(len(t), -1, np.int64)

        tracked = (t.state == _TRACKED) & t.activated
        lost = t.state == _LOST
        pool = np.concatenate([np.flatnonzero(tracked), np.flatnonzero(lost)])
        unconfirmed = np.flatnonzero((t.state == _TRACKED) & ~t.activated)  # not predicted, as in the reference
        if len(pool):
            t.mean[pool], t.cov[pool] = self._predict(t.mean[pool], t.cov[pool], lost[pool], steps)

        # First association: confirmed + lost tracks vs high detections.
        cost = self._cost(t, pool, high, xyxy, detections, self.fuse_score)
        m1, u_pool, u_high = linear_assignment(cost, self.match_thresh)
        t.det[pool[m1[:, 0]]] = high[m1[:, 1]]

        # Second association: still-unmatched *tracked* tracks vs low detections.
        remaining = pool[u_pool]
        remaining = remaining[t.state[remaining] == _TRACKED]
        cost = self._cost(t, remaining, low, xyxy, detections, fuse=False)
        m2, u_remaining, _ = linear_assignment(cost, SECOND_MATCH_THRESH)
        t.det[remaining[m2[:, 0]]] = low[m2[:, 1]]
        t.state[remaining[u_remaining]] = _LOST

        # Unconfirmed tracks vs high detections nobody took; the unmatched ones are deleted below.
        left_high = high[u_high]
        cost = self._cost(t, unconfirmed, left_high, xyxy, detections, self.fuse_score)
        m3, u_unconfirmed, u_left = linear_assignment(cost, UNCONFIRMED_MATCH_THRESH)
        t.det[unconfirmed[m3[:, 0]]] = left_high[m3[:, 1]]

        # Kalman-correct every matched track in one batch (lost ones matched are "re-activated": same maths).
        matched = np.flatnonzero(t.det >= 0)
        if len(matched):
            d = t.det[matched]
            t.mean[matched], t.cov[matched] = self.kalman.update(t.mean[matched], t.cov[matched], xyxy_to_xyah(xyxy[d]))
            t.state[matched] = _TRACKED
            t.activated[matched] = True
            t.end[matched] = stamp
            t.score[matched] = scores[d]
            t.class_id[matched] = detections.class_ids[d]

        keep = np.ones(len(t), np.bool_)
        keep[unconfirmed[u_unconfirmed]] = False
        # Reference step 5: lost tracks that could no longer be re-found one frame later go now.
        keep &= ~((t.state == _LOST) & (self._frames(stamp - t.end, period) > buffer))

        # New tracks from confident leftover high detections.
        new = left_high[u_left]
        new = new[scores[new] >= self.new_track_thresh]
        t = t.take(keep).append(self._start(new, xyxy, detections, stamp))

        t = self._remove_duplicates(t)

        # Confirmed tracks get public ids in row order: previously unconfirmed first, then first-frame tracks.
        fresh = np.flatnonzero(t.activated & (t.track_id == UNTRACKED))
        t.track_id[fresh] = np.arange(self._next_id, self._next_id + len(fresh))
        self._next_id += len(fresh)
        self._tracks = t

        out = np.flatnonzero((t.state == _TRACKED) & t.activated & (t.det >= 0))
        out = out[np.argsort(t.det[out], kind="stable")]
        return detections[t.det[out]].with_track_ids(t.track_id[out].copy())

    def _start(self, new: NDArray[np.intp], xyxy: F64, detections: Detections, stamp: int) -> _Tracks:
        n = len(new)
        mean, cov = self.kalman.initiate(xyxy_to_xyah(xyxy[new]))
        stamps = np.full(n, stamp, np.int64)
        return _Tracks(
            mean,
            cov,
            np.full(n, _TRACKED, np.int8),
            np.full(n, self._updates == 1, np.bool_),
            np.full(n, UNTRACKED, np.int64),
            stamps,
            stamps.copy(),
            detections.scores[new].copy(),
            detections.class_ids[new].copy(),
            new.astype(np.int64),
        )

    def _remove_duplicates(self, t: _Tracks) -> _Tracks:
        """A tracked and a lost track on the same spot are one object: keep the one tracked for longer."""
        tracked = np.flatnonzero(t.state == _TRACKED)
        lost = np.flatnonzero(t.state == _LOST)
        if len(tracked) == 0 or len(lost) == 0:
            return t
        boxes = xyah_to_xyxy(t.mean[:, :4])
        close = 1.0 - box_iou(boxes[tracked], boxes[lost]) < DUPLICATE_IOU_DISTANCE
        if self.class_aware:
            close &= t.class_id[tracked][:, None] == t.class_id[lost][None, :]
        if not close.any():
            return t
        age = t.end - t.start
        older_tracked = age[tracked][:, None] > age[lost][None, :]
        keep = np.ones(len(t), np.bool_)
        keep[lost[(close & older_tracked).any(axis=0)]] = False
        keep[tracked[(close & ~older_tracked).any(axis=1)]] = False
        return t.take(keep)

    def predict(self, meta: FrameMeta | Frame) -> Detections:
        """Kalman-predicted boxes of the active tracks at ``meta.stamp_ns`` (a frame the detector skipped),
        without changing any state (not even the period estimate): rules and annotators see every track on
        every frame. Scores and classes are those of each track's last matched detection; the order is that of
        the last ``update`` output. Before the period is known (one update so far, ``frame_rate`` 0), the gap
        since that update counts as one frame."""
        t = self._tracks
        active = np.flatnonzero((t.state == _TRACKED) & t.activated & (t.det >= 0))
        active = active[np.argsort(t.det[active], kind="stable")]
        if len(active) == 0 or self._last_stamp is None:
            return Detections.empty()
        dt = int(meta.stamp_ns) - self._last_stamp
        period = self._period_ns if self._period_ns is not None or dt <= 0 else float(dt)
        frames = int(self._frames(np.array([dt]), period)[0])
        if frames - 1 > self.track_buffer:  # update() would drop them all before matching
            return Detections.empty()
        if dt <= 0:  # not a later frame: the filtered state is the best estimate
            mean = t.mean[active]
        else:
            steps = max(1, frames)
            mean, _ = self._predict(t.mean[active], t.cov[active], np.zeros(len(active), np.bool_), steps)
        return Detections(
            xyah_to_xyxy(mean[:, :4]).astype(np.float32),
            t.score[active].copy(),
            t.class_id[active].copy(),
            t.track_id[active].copy(),
        )
