"""ByteTrack on synthetic scenes: real numpy/scipy, no mocks. Ground truth is known, so every test asserts the
exact ids (or id changes) an object must get. Time comes from stamps: source frame t is stamped t * PERIOD_NS
(30 fps), and its sequence number is informational only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

from edge_vision.core import plugins
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.interfaces import Tracker
from edge_vision.core.tracking import ByteTrack

PERIOD_NS = 33_333_333  # 30 fps, truncated to whole ns as real stamps are


def frame(t: int, sequence: int | None = None) -> FrameMeta:
    """Source frame ``t``: stamped t * PERIOD_NS; its sequence is ``t`` unless told otherwise."""
    return FrameMeta(t * PERIOD_NS, "cam", t if sequence is None else sequence)


@dataclass
class Obj:
    start: tuple[float, float]  # centre at frame 0
    velocity: tuple[float, float]  # px per source frame
    size: tuple[float, float] = (40.0, 80.0)
    class_id: int = 0
    score: float = 0.9
    visible: Sequence[int] | None = None  # source frames it is detected on; None = always

    def box(self, t: int) -> NDArray[np.float64]:
        cx = self.start[0] + self.velocity[0] * t
        cy = self.start[1] + self.velocity[1] * t
        w, h = self.size
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def detections_at(
    objs: Sequence[Obj], t: int, rng: np.random.Generator | None = None, noise: float = 1.0, shuffle: bool = True
) -> tuple[Detections, list[int]]:
    """Detections of the visible objects at source frame t (with an rng: noisy and, if ``shuffle``, in random
    order), plus each row's object index."""
    rows = [i for i, o in enumerate(objs) if o.visible is None or t in o.visible]
    if rng is not None and shuffle:
        rows = list(rng.permutation(rows)) if rows else rows
    if not rows:
        return Detections.empty(), []
    xyxy = np.stack([objs[i].box(t) for i in rows])
    if rng is not None and noise:
        xyxy = xyxy + rng.normal(0.0, noise, xyxy.shape)
    scores = np.array([objs[i].score for i in rows], np.float32)
    classes = np.array([objs[i].class_id for i in rows], np.int32)
    return Detections(xyxy.astype(np.float32), scores, classes), [int(i) for i in rows]


def ids_by_object(out: Detections, dets: Detections, rows: list[int]) -> dict[int, int]:
    """object index -> track id, recovered from the output boxes (which are the input detection boxes)."""
    result: dict[int, int] = {}
    for box, tid in zip(out.xyxy, out.track_ids, strict=True):
        (match,) = np.flatnonzero((dets.xyxy == box).all(axis=1))
        result[rows[match]] = int(tid)
    return result


def run(
    tracker: ByteTrack,
    objs: Sequence[Obj],
    frames: Sequence[int],
    seed: int = 0,
    noise: float = 1.0,
    renumber: bool = False,
) -> dict[int, dict[int, int]]:
    """Feed the given source frames; return {frame: {object: track id}}. The first frame is not shuffled, so
    the objects present then get ids 1, 2, ... in object order. ``renumber``: sequence numbers count the
    updates (0, 1, 2...) instead of the source frames, as a relay that numbers what it received would."""
    rng = np.random.default_rng(seed)
    history: dict[int, dict[int, int]] = {}
    for n, t in enumerate(frames):
        dets, rows = detections_at(objs, t, rng, noise, shuffle=t != frames[0])
        out = tracker.update(dets, frame(t, n if renumber else t))
        history[t] = ids_by_object(out, dets, rows)
    return history


def test_is_a_tracker_and_builds_from_its_params() -> None:
    assert isinstance(ByteTrack(), Tracker)
    params = {"track_thresh": 0.5, "low_thresh": 0.1, "new_track_thresh": 0.6, "match_thresh": 0.8, "track_buffer": 30}
    built = plugins.build("trackers", "bytetrack", {**params, "frame_rate": 25}, where="tracker")
    assert isinstance(built, ByteTrack)
    assert (built.track_thresh, built.track_buffer, built.frame_rate, built.class_aware) == (0.5, 30, 25.0, True)
    defaults = plugins.build("trackers", "bytetrack", {}, where="tracker")
    assert (defaults.low_thresh, defaults.track_buffer, defaults.frame_rate) == (0.1, 30, 0.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"low_thresh": 0.6, "track_thresh": 0.5}, r"^tracker: low_thresh \(0.6\) must be <= track_thresh \(0.5\)$"),
        ({"track_buffer": -1}, r"^tracker.track_buffer must be >= 0, got -1$"),
        ({"frame_rate": -30.0}, r"^tracker.frame_rate must be >= 0.0, got -30.0$"),
        ({"match_thresh": 1.5}, r"^tracker.match_thresh must be <= 1.0, got 1.5$"),
        ({"track_buffer": 2.5}, r"^tracker.track_buffer must be of type int"),
    ],
)
def test_bad_params_are_one_line_config_errors_naming_the_parameter(params: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plugins.build("trackers", "bytetrack", params, where="tracker")


def test_library_use_checks_the_same() -> None:
    with pytest.raises(ConfigError, match=r"^low_thresh \(0.6\) must be <= track_thresh \(0.5\)$"):
        ByteTrack(track_thresh=0.5, low_thresh=0.6)
    with pytest.raises(ConfigError, match=r"^frame_rate must be a finite number >= 0"):
        ByteTrack(frame_rate=float("nan"))


def test_a_frame_works_as_meta() -> None:
    # Anything with stamp_ns will do: a Frame as well as its FrameMeta.
    obj = Obj((200, 200), (2, 0))
    a, b = ByteTrack(), ByteTrack()
    pixels = np.zeros((1, 1, 3), np.uint8)
    for t in range(5):
        dets = detections_at([obj], t)[0]
        out_a = a.update(dets, frame(t))
        out_b = b.update(dets, Frame(pixels, t * PERIOD_NS, "cam", t))
        np.testing.assert_array_equal(out_a.track_ids, out_b.track_ids)
    assert out_b.track_ids.tolist() == [1]
    np.testing.assert_array_equal(a.predict(frame(7)).xyxy, b.predict(Frame(pixels, 7 * PERIOD_NS, "cam", 7)).xyxy)


def test_linear_motion_keeps_ids_for_100_frames_and_output_follows_input_order() -> None:
    objs = [
        Obj((100, 100), (3, 1)),
        Obj((400, 120), (-2, 2), (50, 100)),
        Obj((600, 400), (1, -3), (30, 60), class_id=2),
        Obj((200, 400), (4, 0), (60, 60)),
        Obj((800, 600), (-3, -2), (80, 40), class_id=1),
    ]
    tracker = ByteTrack()
    rng = np.random.default_rng(1)
    first: dict[int, int] | None = None
    for t in range(100):
        dets, rows = detections_at(objs, t, rng)
        out = tracker.update(dets, frame(t))
        # Every object is confirmed from the first frame on, and the output is the input in input order.
        np.testing.assert_array_equal(out.xyxy, dets.xyxy)
        np.testing.assert_array_equal(out.class_ids, dets.class_ids)
        np.testing.assert_array_equal(out.scores, dets.scores)
        mapping = ids_by_object(out, dets, rows)
        if first is None:
            first = mapping
            # ids 1..5 in the order the objects came in the first frame's detections
            assert [mapping[r] for r in rows] == [1, 2, 3, 4, 5]
        assert mapping == first, f"frame {t}"


@pytest.mark.parametrize(("classes", "class_aware"), [((0, 1), True), ((0, 0), True), ((0, 0), False)])
def test_crossing_objects_keep_distinct_ids(classes: tuple[int, int], class_aware: bool) -> None:
    # At t = 50 the centres are 16 px apart vertically (boxes overlap with IoU 0.67); the velocities differ.
    # (Exactly coincident boxes would make the detection-to-object bookkeeping of this test ambiguous.)
    objs = [
        Obj((0, 200), (6, 0), class_id=classes[0]),
        Obj((600, 116), (-6, 2), class_id=classes[1]),
    ]
    a, b = objs[0].box(50), objs[1].box(50)
    assert np.allclose(a[[0, 2]], b[[0, 2]]) and b[1] - a[1] == 16
    history = run(ByteTrack(class_aware=class_aware), objs, range(100), seed=2)
    for t in range(100):
        assert history[t] == {0: 1, 1: 2}, f"frame {t}: {history[t]}"


def test_class_aware_never_matches_across_classes() -> None:
    # The same box changes class between frames: class-aware starts a new track, class-agnostic keeps it.
    obj = Obj((300, 300), (0, 0))
    for class_aware in (True, False):
        tracker = ByteTrack(class_aware=class_aware)
        for t in range(5):
            tracker.update(detections_at([obj], t)[0], frame(t))
        relabelled = Obj((300, 300), (0, 0), class_id=7)
        ids = [tracker.update(detections_at([relabelled], t)[0], frame(t)).track_ids.tolist() for t in (5, 6)]
        # class-aware: new unconfirmed track on frame 5 (no output), confirmed on 6 with the next id
        assert ids == ([[], [2]] if class_aware else [[1], [1]])


def test_short_gap_keeps_id_long_gap_gets_new_id() -> None:
    missing = set(range(40, 52))  # 12 frames without a detection, object keeps moving
    moving = Obj((100, 300), (4, 1), visible=[t for t in range(100) if t not in missing])
    still = Obj((700, 100), (0, 0))
    history = run(ByteTrack(track_buffer=30), [moving, still], range(100), seed=3, noise=0.0)
    assert {t: history[t].get(0) for t in (39, 40, 51, 52, 99)} == {39: 1, 40: None, 51: None, 52: 1, 99: 1}
    assert all(history[t][1] == 2 for t in range(100))

    # track_buffer 10 < 12 missed frames: the track is gone, the object comes back as id 3 (after one frame
    # unconfirmed), and the still object is untouched.
    history = run(ByteTrack(track_buffer=10), [moving, still], range(100), seed=3, noise=0.0)
    assert {t: history[t].get(0) for t in (39, 52, 53, 99)} == {39: 1, 52: None, 53: 3, 99: 3}
    assert all(history[t][1] == 2 for t in range(100))


def test_buffer_boundary_is_in_missed_frames() -> None:
    # Exactly track_buffer missed frames: re-found. One more: lost for good (reference semantics).
    for missed, expected in ((10, 1), (11, None)):
        obj = Obj((300, 300), (2, 0), visible=[t for t in range(40) if not 20 <= t < 20 + missed])
        history = run(ByteTrack(track_buffer=10), [obj], range(40), noise=0.0)
        assert history[20 + missed].get(0) == expected


def test_low_score_detections_extend_tracks_but_never_start_them() -> None:
    tracker = ByteTrack()
    obj = Obj((200, 200), (3, 0))
    weak_newcomer = Obj((600, 400), (0, 0), score=0.3)
    in_between = Obj((600, 100), (0, 0), score=0.55)  # high (> track_thresh) but below new_track_thresh
    for t in range(60):
        obj.score = 0.9 if t < 10 or t >= 40 else 0.3  # low-score stretch 10..39 (occlusion, say)
        dets, rows = detections_at([obj, weak_newcomer, in_between], t, np.random.default_rng(t))
        out = tracker.update(dets, frame(t))
        assert out.track_ids.tolist() == [1], f"frame {t}"
        assert out.scores.tolist() == pytest.approx([obj.score])  # the detection's own score is reported
        assert rows[int(np.flatnonzero((dets.xyxy == out.xyxy[0]).all(axis=1))[0])] == 0

    # Below low_thresh the detection is ignored: the track is lost. A low-score detection only extends *tracked*
    # tracks, so it does not re-find the lost one either; a high-score one does, with the old id.
    for t, score in [(60, 0.05), (61, 0.05), (62, 0.05), (63, 0.3), (64, 0.3)]:
        obj.score = score
        assert len(tracker.update(detections_at([obj], t)[0], frame(t))) == 0, f"frame {t}"
    obj.score = 0.9
    assert tracker.update(detections_at([obj], 65)[0], frame(65)).track_ids.tolist() == [1]


def test_low_score_detections_never_start_tracks_even_with_a_low_new_track_thresh() -> None:
    tracker = ByteTrack(track_thresh=0.5, new_track_thresh=0.2)
    low = Obj((300, 300), (1, 0), score=0.4)
    for t in range(20):
        assert len(tracker.update(detections_at([low], t)[0], frame(t))) == 0
    # just above track_thresh (and above new_track_thresh): starts a track
    for t in range(20, 22):
        out = tracker.update(detections_at([low, Obj((600, 300), (1, 0), score=0.51)], t)[0], frame(t))
    assert out.track_ids.tolist() == [1] and out.scores.tolist() == pytest.approx([0.51])


def test_new_track_is_confirmed_on_its_second_frame_and_false_positives_use_no_id() -> None:
    tracker = ByteTrack()
    a = Obj((100, 100), (0, 0))
    false_positive = Obj((500, 500), (0, 0), visible=[5])
    b = Obj((300, 300), (2, 2), visible=range(10, 30))
    outputs = {}
    for t in range(30):
        dets, rows = detections_at([a, false_positive, b], t)
        outputs[t] = ids_by_object(tracker.update(dets, frame(t)), dets, rows)
    assert outputs[5] == {0: 1}  # the one-frame detection is never reported
    assert outputs[10] == {0: 1}  # b is unconfirmed on its first frame...
    assert outputs[11] == {0: 1, 2: 2}  # ...and gets id 2, not 3: the false positive consumed no id
    assert outputs[29] == {0: 1, 2: 2}


def scene_for_skipping() -> list[Obj]:
    return [
        Obj((100, 100), (3, 1)),
        Obj((600, 150), (-4, 2), (50, 100)),
        Obj((300, 500), (2, -2), (60, 60), class_id=1),
        # enters at frame 30, so it gets a later id in both runs
        Obj((50, 300), (5, 0), visible=range(30, 120)),
        # disappears for 15 source frames, within the 30-frame buffer
        Obj((800, 400), (-2, 0), (40, 40), visible=[t for t in range(120) if not 50 <= t < 65]),
    ]


def test_feeding_every_third_frame_gives_the_same_ids_as_every_frame() -> None:
    # With frame_rate set, a stamp gap of three periods is three Kalman steps (and three buffer frames).
    objs = scene_for_skipping()
    every = run(ByteTrack(), objs, range(120), seed=4, noise=0.5)
    skipped = run(ByteTrack(frame_rate=30), objs, range(0, 120, 3), seed=4, noise=0.5)
    # the entering object is confirmed on frame 31 when every frame is fed, on 33 (its 2nd update) otherwise
    assert every[31][3] == 5 and skipped[33][3] == 5
    for t in range(0, 120, 3):
        expected = {o: i for o, i in every[t].items() if not (o == 3 and t == 30)}
        assert skipped[t] == expected, f"frame {t}"
    assert every[117] == {0: 1, 1: 2, 2: 3, 3: 5, 4: 4}


def test_lost_buffer_counts_frames_at_the_nominal_rate_not_updates() -> None:
    # Missing for 20 source frames = 6-7 updates at every 3rd frame; track_buffer=10 must still expire it.
    obj = Obj((300, 300), (1, 0), visible=[t for t in range(90) if not 30 <= t < 50])
    history = run(ByteTrack(track_buffer=10, frame_rate=30), [obj], range(0, 90, 3), noise=0.0)
    assert history[27] == {0: 1}
    assert history[51] == {}  # new unconfirmed track
    assert history[54] == {0: 2}


@pytest.mark.parametrize(("reappears", "same_id"), [(36, True), (39, False)])
def test_buffer_boundary_with_skipped_frames_matches_every_frame(reappears: int, same_id: bool) -> None:
    # Last seen on 27; back on 36 (8 missed frames <= 10) or 39 (11 missed > 10): the frames between were
    # never fed, yet the outcome must be the one every-frame feeding gives.
    obj = Obj((300, 300), (1, 0), visible=[t for t in range(60) if not 27 < t < reappears])
    for frames in (range(60), range(0, 60, 3)):
        history = run(ByteTrack(track_buffer=10, frame_rate=30), [obj], frames, noise=0.0)
        assert history[reappears + 3] == {0: 1 if same_id else 2}, f"frames {frames}"


@pytest.mark.parametrize("frame_rate", [0.0, 30.0])
def test_irregular_gap_is_predicted_by_stamp_not_sequence(frame_rate: float) -> None:
    # 12 px/frame, 40 px wide boxes. After a 6-frame gap the box is 72 px further: only a prediction over six
    # frames still overlaps it. The estimated period (frame_rate 0) is one frame from the updates before the gap.
    obj = Obj((100, 300), (12, 0))
    for stamped_as, sequence, expected_id in ((36, 36, 1), (36, 31, 1), (31, 36, 2), (31, 31, 2)):
        tracker = ByteTrack(frame_rate=frame_rate)
        for t in range(31):
            tracker.update(detections_at([obj], t)[0], frame(t))
        dets = detections_at([obj], 36)[0]  # the detector really saw source frame 36...
        out = tracker.update(dets, frame(stamped_as, sequence))  # ...stamped right (36) or wrong (31)
        next_out = tracker.update(detections_at([obj], 37)[0], frame(stamped_as + 1, sequence + 1))
        assert next_out.track_ids.tolist() == [expected_id], (stamped_as, sequence)
        assert len(out) == (1 if expected_id == 1 else 0)


def test_dropped_frames_give_the_same_ids_whatever_the_sequence_numbers() -> None:
    # A lossy transport loses 10% of the detection messages; a relay may renumber what arrives. Only the stamps
    # decide, so both runs agree with each other, and with the lossless run on every frame that was delivered.
    objs = scene_for_skipping()
    rng = np.random.default_rng(11)
    lost = set(rng.choice(np.arange(1, 120), size=12, replace=False).tolist())
    delivered = [t for t in range(120) if t not in lost]
    consistent = run(ByteTrack(), objs, delivered, seed=7, noise=0.5)
    renumbered = run(ByteTrack(), objs, delivered, seed=7, noise=0.5, renumber=True)
    assert consistent == renumbered
    every = run(ByteTrack(), objs, range(120), seed=7, noise=0.5)
    final = {0: 1, 1: 2, 2: 3, 3: 5, 4: 4}
    assert every[119] == final and consistent[delivered[-1]] == final
    # Same ids wherever both runs output the object (an entering object is confirmed one update later).
    for t in delivered:
        assert all(every[t][o] == i for o, i in consistent[t].items()), f"frame {t}"


def test_jittered_stamps_round_to_whole_frames() -> None:
    # Stamps jittering around the period still make one Kalman step per frame: the filter state is that of
    # exact stamps. Gaps vary by 2 * jitter, so with frame_rate given that holds while jitter < P / 4 (8 ms of
    # 33.3 ms); an estimated period (frame_rate 0) is the smallest gap, P - 2 * jitter, so < P / 10 (3 ms).
    objs = scene_for_skipping()
    reference = ByteTrack(frame_rate=30)
    exact = run(reference, objs, range(120), seed=8, noise=0.5)
    for frame_rate, jitter_ns in ((30.0, 8_000_000), (0.0, 3_000_000)):
        jitter = np.random.default_rng(9).integers(-jitter_ns, jitter_ns + 1, size=120)
        tracker = ByteTrack(frame_rate=frame_rate)
        rng = np.random.default_rng(8)
        for t in range(120):
            dets, rows = detections_at(objs, t, rng, 0.5, shuffle=t != 0)
            out = tracker.update(dets, FrameMeta(t * PERIOD_NS + int(jitter[t]), "cam", t))
            assert ids_by_object(out, dets, rows) == exact[t], (frame_rate, t)
        np.testing.assert_array_equal(tracker._tracks.mean, reference._tracks.mean)


def test_predict_moves_boxes_along_velocity_without_changing_state() -> None:
    objs = [Obj((100, 200), (4, -2), class_id=3, score=0.8), Obj((500, 300), (-3, 0), (60, 30))]
    lost = Obj((800, 800), (0, 0), visible=range(0, 20))  # lost before frame 29: not predicted
    tracker, twin = ByteTrack(), ByteTrack()
    for t in range(30):
        dets = detections_at([*objs, lost], t)[0]
        out = tracker.update(dets, frame(t))
        twin.update(dets, frame(t))
    last = out
    predicted = tracker.predict(frame(32))  # three source frames after the last update
    assert predicted.track_ids.tolist() == [1, 2]
    assert predicted.class_ids.tolist() == [3, 0] and predicted.scores.tolist() == pytest.approx([0.8, 0.9])
    expected = np.stack([o.box(32) for o in objs])
    np.testing.assert_allclose(predicted.xyxy, expected, atol=1.0)
    # It really moved (3 frames of motion), not just the last boxes echoed.
    shift = predicted.centers - last.centers
    np.testing.assert_allclose(shift, [[12, -6], [-9, 0]], atol=1.0)
    assert predicted.xyxy.dtype == np.float32 and predicted.track_ids.dtype == np.int64

    # Predicting (repeatedly, even past the next update's frame) must leave later updates bit-identical.
    for t in range(30, 60):
        for ahead in (0, 1, 2, 5):
            tracker.predict(frame(t + ahead))
        dets = detections_at(objs, t, np.random.default_rng(t))[0]
        a, b = tracker.update(dets, frame(t)), twin.update(dets, frame(t))
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)


def test_predict_before_any_update_and_after_the_buffer_is_empty() -> None:
    tracker = ByteTrack(track_buffer=5, frame_rate=30)  # one update: the period must be given
    assert len(tracker.predict(frame(0))) == 0
    tracker.update(detections_at([Obj((100, 100), (1, 0))], 0)[0], frame(0))
    assert tracker.predict(frame(6)).track_ids.tolist() == [1]
    assert len(tracker.predict(frame(7))) == 0  # 6 missed frames > track_buffer: update() would drop it


def test_empty_detections_and_dtypes() -> None:
    tracker = ByteTrack()
    out = tracker.update(Detections.empty(), frame(0))
    assert len(out) == 0
    assert (out.xyxy.dtype, out.scores.dtype, out.class_ids.dtype, out.track_ids.dtype) == (
        np.float32,
        np.float32,
        np.int32,
        np.int64,
    )
    assert out.xyxy.shape == (0, 4)
    obj = Obj((200, 200), (2, 0))
    for t in range(1, 10):
        out = tracker.update(detections_at([obj], t)[0], frame(t))
    # First non-empty frame is update #2: unconfirmed at t=1, confirmed with id 1 from t=2.
    assert out.track_ids.tolist() == [1]
    assert (out.xyxy.dtype, out.scores.dtype, out.class_ids.dtype, out.track_ids.dtype) == (
        np.float32,
        np.float32,
        np.int32,
        np.int64,
    )
    for t in range(10, 15):  # nothing detected: no output, the track is lost but kept
        assert len(tracker.update(Detections.empty(), frame(t))) == 0
        assert len(tracker.predict(frame(t))) == 0
    assert tracker.update(detections_at([obj], 15)[0], frame(15)).track_ids.tolist() == [1]


def test_degenerate_boxes_are_ignored() -> None:
    tracker = ByteTrack()
    boxes = np.array([[10, 10, 10, 50], [0, 0, 20, 20], [np.nan, 0, 5, 5], [30, 30, 20, 40]], np.float32)
    out = tracker.update(Detections(boxes, np.full(4, 0.9, np.float32), np.zeros(4, np.int32)), frame(0))
    assert out.track_ids.tolist() == [1]
    np.testing.assert_array_equal(out.xyxy, boxes[[1]])


def test_reset_forgets_tracks_and_restarts_ids() -> None:
    tracker = ByteTrack()
    objs = [Obj((100, 100), (1, 0)), Obj((400, 400), (0, 1))]
    run(tracker, objs, range(10))
    tracker.update(detections_at([Obj((700, 700), (0, 0))], 10)[0], frame(10))
    tracker.update(detections_at([Obj((700, 700), (0, 0))], 11)[0], frame(11))
    tracker.reset()
    assert len(tracker.predict(frame(12))) == 0
    history = run(tracker, objs[::-1], range(0, 5))
    assert history[0] == {0: 1, 1: 2} and history[4] == {0: 1, 1: 2}


def test_ids_are_unique_over_a_busy_scene() -> None:
    # Many short-lived objects: ids increase by one per confirmed track and are never reused.
    rng = np.random.default_rng(5)
    objs = []
    for _ in range(40):
        t0 = int(rng.integers(0, 150))
        objs.append(
            Obj(
                (float(rng.uniform(0, 1500)), float(rng.uniform(0, 1500))),
                (float(rng.normal(0, 2)), float(rng.normal(0, 2))),
                (float(rng.uniform(20, 60)), float(rng.uniform(20, 60))),
                visible=range(t0, t0 + int(rng.integers(5, 40))),
            )
        )
    history = run(ByteTrack(), objs, range(200), seed=6)
    first_id: dict[int, int] = {}
    for t in range(200):
        for o, tid in history[t].items():
            first_id.setdefault(o, tid)
            assert first_id[o] == tid
    ids = sorted(first_id.values())
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) == 40
