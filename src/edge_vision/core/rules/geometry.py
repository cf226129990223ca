"""Vectorised 2-D geometry for rules, in image pixels (x right, y *down*).

Every function takes (N, 2) point arrays and returns one value per point, so a rule tests all its
tracks in one call. Arithmetic is float64: float32 box corners lose precision in the cross products.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge_vision.core.detections import Detections

ANCHORS = ("bottom_center", "center")

Points = NDArray[np.float64]


def as_points(points: ArrayLike, *, minimum: int = 0, what: str = "points") -> Points:
    """``points`` as an (N, 2) finite float64 array; ValueError naming ``what`` otherwise."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric [x, y] pairs, got {points!r}") from exc
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < minimum:
        raise ValueError(f"{what} must be >= {minimum} [x, y] pairs, got {points!r}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite, got {points!r}")
    return array


def anchor_points(detections: Detections, anchor: str) -> Points:
    """(N, 2) point per box that a rule tests: where the object stands, or its centre."""
    if anchor == "bottom_center":
        return detections.bottom_centers.astype(np.float64)
    if anchor == "center":
        return detections.centers.astype(np.float64)
    raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")


def polygon_area(polygon: Points) -> float:
    """Unsigned area (shoelace); 0 for a degenerate polygon (collinear or repeated points)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) * 0.5)


def points_in_polygon(points: Points, polygon: Points) -> NDArray[np.bool_]:
    """(N,) True where a point lies inside ``polygon`` (M, 2), by the even-odd rule.

    A horizontal ray from each point is tested against all M edges at once ((N, M) arrays): fine for
    the tens of tracks and handful of vertices a zone has.
    """
    if len(points) == 0:
        return np.zeros(0, dtype=np.bool_)
    px, py = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > py) != (y2 > py)
    # Horizontal edges never straddle; a dummy denominator avoids a divide-by-zero warning there.
    dy = np.where(y2 == y1, 1.0, y2 - y1)
    x_at_y = x1 + (py - y1) * (x2 - x1) / dy
    crossings = np.count_nonzero(straddles & (px < x_at_y), axis=1)
    return np.asarray(crossings % 2 == 1, dtype=np.bool_)


def _cross(ax: ArrayLike, ay: ArrayLike, bx: ArrayLike, by: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(np.multiply(ax, by) - np.multiply(ay, bx), dtype=np.float64)


def signed_distance(points: Points, start: Points, end: Points) -> NDArray[np.float64]:
    """(N,) distance in pixels from each point to the infinite line through ``start`` -> ``end``.

    Positive on the *right* of the direction start -> end as seen on screen (image y points down), negative
    on the left, 0 on the line. E.g. start (0, 0), end (10, 0) points right: y > 0 (lower) is positive.
    """
    direction = end - start
    length = float(np.hypot(direction[0], direction[1]))
    if length == 0.0:
        raise ValueError(f"line start and end are the same point {start.tolist()}")
    rel = points - start
    return _cross(direction[0], direction[1], rel[:, 0], rel[:, 1]) / length


def crossing_fraction(p0: Points, p1: Points, start: Points, end: Points) -> NDArray[np.float64]:
    """(N,) where each movement p0 -> p1 meets the infinite line start -> end, as a fraction along it.

    0 is ``start``, 1 is ``end``: the movement crosses the *segment* where the value is in [0, 1]. NaN where
    the movement is parallel to the line (it never crosses).
    """
    r = end - start
    q = p1 - p0
    rel = p0 - start
    denom = _cross(r[0], r[1], q[:, 0], q[:, 1])
    numer = _cross(rel[:, 0], rel[:, 1], q[:, 0], q[:, 1])
    safe = np.where(denom == 0.0, 1.0, denom)
    return np.where(denom == 0.0, np.nan, numer / safe)


def crosses_segment(p0: Points, p1: Points, start: Points, end: Points) -> NDArray[np.bool_]:
    """(N,) True where the movement p0 -> p1 goes from one side of the segment start -> end to the other
    through the segment itself (not past one of its ends)."""
    if len(p0) == 0:
        return np.zeros(0, dtype=np.bool_)
    d0 = signed_distance(p0, start, end)
    d1 = signed_distance(p1, start, end)
    t = crossing_fraction(p0, p1, start, end)
    with np.errstate(invalid="ignore"):  # NaN (parallel) compares False, as wanted
        within = (t >= 0.0) & (t <= 1.0)
    return np.asarray((np.sign(d0) * np.sign(d1) < 0) & within, dtype=np.bool_)
