"""RunSummary: tracks counted per class with a minimum length, fed by plain Detections / events from any thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.summary import RunSummary

LABELS = ["person", "bicycle", "car"]


def tracks(*rows: tuple[int, int]) -> Detections:
    """One frame of tracker output from (track_id, class_id) rows."""
    n = len(rows)
    return Detections(
        np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)),
        np.full(n, 0.9, np.float32),
        np.array([c for _, c in rows], np.int32),
        np.array([t for t, _ in rows], np.int64),
    )


def feed(summary: RunSummary, track_id: int, class_id: int, frames: int) -> None:
    for _ in range(frames):
        summary.on_tracks(tracks((track_id, class_id)))


def event(rule: str = "gate", kind: str = "line_cross", direction: str = "in") -> Event:
    return Event(kind, rule, "cam", 0, 0, 1, 0, "person", 0.9, (0.0, 0.0, 1.0, 1.0), direction)


def test_tracks_are_counted_per_class_from_the_minimum_length() -> None:
    summary = RunSummary(LABELS)
    feed(summary, 1, 0, 12)
    feed(summary, 2, 0, 10)  # exactly the minimum: counted
    feed(summary, 3, 0, 9)  # one short: a fragment
    feed(summary, 4, 2, 15)
    feed(summary, 5, 2, 1)
    d = summary.to_dict()
    assert d["tracks_per_class"] == {"person": 2, "car": 1}
    assert (d["tracks"], d["short_tracks"], d["min_track_frames"]) == (3, 2, 10)
    assert d["median_track_length"] == 12  # over the counted tracks 10, 12, 15


def test_min_track_frames_is_configurable_and_checked() -> None:
    summary = RunSummary(LABELS, min_track_frames=1)
    feed(summary, 1, 0, 1)
    feed(summary, 2, 1, 3)
    d = summary.to_dict()
    assert (d["tracks_per_class"], d["tracks"], d["short_tracks"]) == ({"person": 1, "bicycle": 1}, 2, 0)
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ConfigError, match="min_track_frames must be an integer >= 1"):
            RunSummary(LABELS, min_track_frames=bad)  # type: ignore[arg-type]


def test_a_track_counts_once_under_its_majority_class() -> None:
    summary = RunSummary(LABELS, min_track_frames=5)
    feed(summary, 7, 0, 8)
    feed(summary, 7, 1, 3)  # a class-agnostic tracker relabelled the box for a few frames
    feed(summary, 8, 1, 3)
    feed(summary, 8, 2, 3)  # a tie: the class it started with
    d = summary.to_dict()
    assert d["tracks_per_class"] == {"person": 1, "bicycle": 1} and d["tracks"] == 2
    assert d["median_track_length"] == 11  # upper middle of 6, 11


def test_untracked_rows_duplicates_and_none_are_ignored() -> None:
    summary = RunSummary(LABELS, min_track_frames=2)
    for _ in range(2):
        summary.on_tracks(tracks((-1, 0), (4, 2), (4, 2)))  # an id twice in one frame is one frame
    summary.on_tracks(None)
    summary.on_tracks(Detections.empty())
    d = summary.to_dict()
    assert (d["tracks_per_class"], d["short_tracks"], d["median_track_length"]) == ({"car": 1}, 0, 2)


def test_detections_frames_and_events() -> None:
    summary = RunSummary(LABELS)
    summary.on_detections(tracks((-1, 0), (-1, 0), (-1, 2), (-1, 9)))  # class 9: no label, named by its id
    summary.on_detections(None)  # not run through the detector: not a frame
    summary.on_detections(Detections.empty())
    summary.on_events([event(direction="in"), event(direction="out"), event(direction="in")])
    summary.on_events([])
    summary.on_events([event(rule="door", kind="zone_enter", direction="")])
    summary.finish()
    d = summary.to_dict()
    assert d["frames"] == 2
    assert d["detections_per_class"] == {"person": 2, "car": 1, "9": 1}
    assert d["events"] == {"door/zone_enter": 1, "gate/line_cross/in": 2, "gate/line_cross/out": 1}
    seconds = summary.seconds
    assert d["seconds"] == round(seconds, 3) and summary.seconds == seconds  # frozen by finish()


def test_format_prints_tracks_per_class() -> None:
    summary = RunSummary(LABELS)
    assert "tracks: none (>= 10 frames; 0 shorter)\n" in summary.format()
    for track_id in range(6):
        feed(summary, track_id, 0, 133)
    for track_id in range(6, 9):
        feed(summary, track_id, 0, 2)
    feed(summary, 20, 2, 40)
    text = summary.format()
    assert "tracks: person 6, car 1 (>= 10 frames; 3 shorter), median length 133 frames\n" in text
    assert text.startswith("frames: 0 in ") and text.endswith("events: none")


def test_taps_from_many_threads_lose_nothing() -> None:
    # 8 threads feed one camera at once (the pipeline feeds each camera from its one tracker thread): a thread left
    # waiting while the others add 1000 frames would see its tracks retired, so none is retired here.
    summary = RunSummary(LABELS, retire_after_frames=10**9)
    start = threading.Barrier(8)

    def worker(track_id: int) -> None:
        start.wait()
        for _ in range(500):
            summary.on_tracks(tracks((track_id, 0), (100 + track_id, 2)))
            summary.on_detections(tracks((-1, 0)))
            summary.on_events([event()])
            summary.to_dict()  # reading while others write must not raise

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    d = summary.to_dict()
    assert d["tracks_per_class"] == {"person": 8, "car": 8} and d["median_track_length"] == 500
    assert d["frames"] == 4000 and d["detections_per_class"] == {"person": 4000}
    assert d["events"] == {"gate/line_cross/in": 4000}
