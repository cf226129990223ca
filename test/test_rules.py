"""Zone and line rules on synthetic tracks: events, debounce, hysteresis, filters, time from stamps, drawing,
and bad configs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from edge_vision.core import plugins
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.frame import Frame, FrameMeta
from edge_vision.core.interfaces import Rule
from edge_vision.core.rules import LineCrossingRule, PolygonZoneRule
from edge_vision.core.rules.geometry import crosses_segment, points_in_polygon, signed_distance

LABELS = ["person", "bicycle", "car"]
SQUARE = [100, 100, 200, 100, 200, 200, 100, 200]  # flat [x1, y1, x2, y2, ...], as ROS parameters hold it
SQUARE_PAIRS = [[100, 100], [200, 100], [200, 200], [100, 200]]  # the same, as library users may write it


def frame(sequence: int) -> FrameMeta:
    """Frames 100 ms apart (10 fps), from t = 1 s."""
    return FrameMeta(stamp_ns=1_000_000_000 + sequence * 100_000_000, camera_id="cam7", sequence=sequence)


def tracks(*objects: tuple[float, float, int, int]) -> Detections:
    """Boxes 20 wide, 40 tall whose bottom-centre is (x, y); each object is (x, y, track_id, class_id)."""
    xyxy = [[x - 10, y - 40, x + 10, y] for x, y, _, _ in objects]
    return Detections(
        np.array(xyxy, np.float32).reshape(-1, 4),
        np.full(len(objects), 0.8, np.float32),
        np.array([o[3] for o in objects], np.int32),
        np.array([o[2] for o in objects], np.int64),
    )


def run(rule: Rule, path: Sequence[tuple[float, float]], track_id: int = 1, class_id: int = 0) -> list[list[str]]:
    """Feed one track along ``path`` (one point per frame); return per frame the events as kind[/direction]."""
    out = []
    for seq, (x, y) in enumerate(path):
        events = rule.update(tracks((x, y, track_id, class_id)), frame(seq))
        out.append([e.kind + (f"/{e.direction}" if e.direction else "") for e in events])
    return out


# --- geometry ---------------------------------------------------------------------------------------------


def test_point_in_polygon_vectorised_including_concave() -> None:
    # An L shape: the notch (150, 150)-(200, 200) is outside.
    ell = np.array([[100, 100], [150, 100], [150, 150], [200, 150], [200, 200], [100, 200]], np.float64)
    points = np.array([[120, 120], [175, 175], [175, 125], [300, 300], [99, 150]], np.float64)
    assert points_in_polygon(points, ell).tolist() == [True, True, False, False, False]
    assert points_in_polygon(np.zeros((0, 2)), ell).shape == (0,)


def test_side_sign_and_segment_crossing() -> None:
    start, end = np.array([0.0, 0.0]), np.array([100.0, 0.0])  # pointing right on screen
    d = signed_distance(np.array([[50.0, 10.0], [50.0, -10.0], [50.0, 0.0]]), start, end)
    assert d.tolist() == [10.0, -10.0, 0.0]  # below (y down) is the right-hand side: positive
    p0 = np.array([[50.0, -5.0], [150.0, -5.0], [50.0, -5.0]])
    p1 = np.array([[50.0, 5.0], [150.0, 5.0], [60.0, -1.0]])
    assert crosses_segment(p0, p1, start, end).tolist() == [True, False, False]  # through, past the end, same side


# --- zone ---------------------------------------------------------------------------------------------------


def test_zone_enter_and_exit_with_event_fields() -> None:
    zone = PolygonZoneRule(name="door", polygon=SQUARE, labels=LABELS)
    enter = zone.update(tracks((50, 150, 4, 0)), frame(0)) + zone.update(tracks((150, 150, 4, 0)), frame(1))
    assert [e.kind for e in enter] == ["zone_enter"]
    event = enter[0]
    assert (event.rule, event.camera_id, event.sequence, event.stamp_ns) == ("door", "cam7", 1, 1_100_000_000)
    assert (event.track_id, event.class_id, event.class_name, event.direction) == (4, 0, "person", "")
    assert event.xyxy == (140.0, 110.0, 160.0, 150.0) and all(type(v) is float for v in event.xyxy)
    assert event.score == pytest.approx(0.8)
    assert zone.occupancy == 1
    exit_ = zone.update(tracks((250, 150, 4, 0)), frame(2))
    assert [e.kind for e in exit_] == ["zone_exit"] and exit_[0].xyxy == (240.0, 110.0, 260.0, 150.0)
    assert (zone.enter_count, zone.exit_count, zone.occupancy) == (1, 1, 0)


def test_zone_debounce_ignores_flicker_on_the_edge() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, min_frames=3)
    inside, outside = (150, 150), (50, 150)
    path = [
        outside,
        inside,
        outside,
        inside,
        inside,
        inside,
        inside,
        outside,
        outside,
        inside,
        outside,
        outside,
        outside,
    ]
    assert run(zone, path) == [[], [], [], [], [], ["zone_enter"], [], [], [], [], [], [], ["zone_exit"]]


def test_zone_anchor_choice_matters() -> None:
    # Bottom-centre (150, 210) is below the square; the centre (150, 190) is inside it.
    bottom = PolygonZoneRule(name="b", polygon=SQUARE)
    center = PolygonZoneRule(name="c", polygon=SQUARE, anchor="center")
    assert run(bottom, [(150, 210)]) == [[]]
    assert run(center, [(150, 210)]) == [["zone_enter"]]


def test_zone_counts_occupancy_of_visible_tracks_and_forgets_quietly() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, forget_after_s=0.5)
    events = zone.update(tracks((150, 150, 1, 0), (160, 160, 2, 0), (20, 20, 3, 0)), frame(0))
    assert sorted(e.track_id for e in events) == [1, 2] and zone.occupancy == 2
    assert zone.update(tracks((150, 150, 1, 0)), frame(1)) == [] and zone.occupancy == 1
    for seq in range(2, 12):  # track 2 vanished while inside: no exit event by default
        assert zone.update(Detections.empty(), frame(seq)) == []
    # Forgotten: the same id coming back inside counts as a new entry.
    assert [e.kind for e in zone.update(tracks((150, 150, 2, 0)), frame(12))] == ["zone_enter"]
    assert zone.enter_count == 3 and zone.exit_count == 0


def test_zone_exit_on_lost_emits_exit_when_forgetting() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, forget_after_s=0.3, exit_on_lost=True)
    zone.update(tracks((150, 150, 9, 2)), frame(10))
    kinds = [
        [(e.kind, e.track_id, e.sequence) for e in zone.update(Detections.empty(), frame(s))] for s in range(11, 15)
    ]
    assert kinds == [[], [], [], [("zone_exit", 9, 14)]]
    assert zone.exit_count == 1


def test_zone_class_filter_and_untracked_are_ignored() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, labels=LABELS, classes=["car"])
    events = zone.update(tracks((150, 150, 1, 0), (150, 150, 2, 2), (150, 150, -1, 2)), frame(0))
    assert [(e.track_id, e.class_name) for e in events] == [(2, "car")]
    assert zone.occupancy == 1


def test_forgetting_is_timed_by_stamps_not_by_frames_or_sequence() -> None:
    # Sparse updates (every_nth, a lossy link) whose sequence numbers jump about: forget_after_s=0.5 keeps a
    # track unseen for up to 0.5 s however many frames went by, and forgets it after that.
    zone = PolygonZoneRule(name="z", polygon=SQUARE, forget_after_s=0.5, exit_on_lost=True)
    at = 1_000_000_000

    def meta(seconds: float, sequence: int) -> FrameMeta:
        return FrameMeta(at + round(seconds * 1e9), "cam7", sequence)

    def kinds(seconds: float, sequence: int, *objects: tuple[float, float, int, int]) -> list[tuple[str, int]]:
        return [(e.kind, e.sequence) for e in zone.update(tracks(*objects), meta(seconds, sequence))]

    assert kinds(0.0, 0, (150, 150, 1, 0)) == [("zone_enter", 0)]
    assert kinds(0.4, 1000) == []  # 1000 "frames" later: still remembered
    assert kinds(0.45, 3, (150, 150, 1, 0)) == []  # back within 0.5 s: no second enter
    assert kinds(0.9, 4) == []
    assert kinds(1.0, 5) == [("zone_exit", 5)]  # unseen for 0.55 s
    # Back after 0.6 s with no update in between: forgotten all the same, so it leaves and enters afresh.
    assert kinds(1.1, 6, (150, 150, 2, 0)) == [("zone_enter", 6)]
    assert kinds(1.7, 7, (150, 150, 2, 0)) == [("zone_exit", 7), ("zone_enter", 7)]


def test_a_frame_works_as_meta() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE)
    image = np.zeros((480, 640, 3), np.uint8)
    (event,) = zone.update(tracks((150, 150, 1, 0)), Frame(image, 5_000, "cam2", 9))
    assert (event.camera_id, event.stamp_ns, event.sequence) == ("cam2", 5_000, 9)


def test_nested_pairs_and_arrays_are_accepted_for_library_users() -> None:
    for polygon in (SQUARE, SQUARE_PAIRS, np.array(SQUARE_PAIRS, np.float32)):
        zone = PolygonZoneRule(name="z", polygon=polygon)
        assert zone.polygon.tolist() == [[100.0, 100.0], [200.0, 100.0], [200.0, 200.0], [100.0, 200.0]]
    line = LineCrossingRule(name="l", start=np.array([0, 5]), end=[[10, 5]])
    assert (line.start.tolist(), line.end.tolist()) == ([0.0, 5.0], [10.0, 5.0])


def test_class_name_falls_back_to_the_id() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, labels=LABELS)
    (event,) = zone.update(tracks((150, 150, 1, 57)), frame(0))
    assert (event.class_id, event.class_name) == (57, "57")


# --- line ---------------------------------------------------------------------------------------------------


def horizontal_line(**params: Any) -> LineCrossingRule:
    """Line across y=200 from x=100 to x=300, pointing right: moving down the image is "in"."""
    return LineCrossingRule(name="gate", start=[100, 200], end=[300, 200], labels=LABELS, **params)


def test_line_crossing_directions_and_counts() -> None:
    line = horizontal_line()
    down = [(200, 150), (200, 190), (200, 210), (200, 260)]
    assert run(line, down) == [[], [], ["line_cross/in"], []]
    up = [(150, 260), (150, 180)]
    assert run(line, up, track_id=2) == [[], ["line_cross/out"]]
    assert (line.in_count, line.out_count) == (1, 1)


def test_vertical_line_in_is_right_to_left_on_screen() -> None:
    line = LineCrossingRule(name="v", start=[384, 140], end=[384, 430])  # drawn top -> bottom
    assert run(line, [(420, 300), (350, 300), (420, 300)]) == [[], ["line_cross/in"], ["line_cross/out"]]


def test_line_jitter_on_the_line_never_fires_and_real_crossing_fires_once() -> None:
    line = horizontal_line(min_distance=3.0)
    # Starts clearly above, then wobbles +-2 px around the line, then goes clearly below and wobbles there.
    path = [(200, 190), (200, 198), (200, 202), (200, 199), (200, 201.5), (200, 198), (200, 210), (200, 202)]
    path += [(200, 198.5), (200, 204), (200, 230)]
    result = run(line, path)
    assert result == [[], [], [], [], [], [], ["line_cross/in"], [], [], [], []]
    assert (line.in_count, line.out_count) == (1, 0)


def test_without_hysteresis_the_same_jitter_double_fires() -> None:
    # The control for the test above: proves the path really does cross back and forth.
    line = horizontal_line(min_distance=0.0)
    result = run(line, [(200, 190), (200, 198), (200, 202), (200, 199), (200, 201.5)])
    assert result == [[], [], ["line_cross/in"], ["line_cross/out"], ["line_cross/in"]]


def test_line_min_frames_ignores_a_one_frame_glitch_across() -> None:
    # A person standing next to the line whose box glitches across it for one frame (seen on vtest.avi).
    glitch = [(200, 190), (200, 194), (200, 206), (200, 193), (200, 192)]
    assert run(horizontal_line(), glitch) == [[], [], ["line_cross/in"], ["line_cross/out"], []]
    assert run(horizontal_line(min_frames=2), glitch) == [[], [], [], [], []]
    # A real crossing still counts once, on its second frame clearly across; band frames are neutral.
    real = [(200, 190), (200, 206), (200, 201), (200, 215), (200, 230)]
    assert run(horizontal_line(min_frames=2), real) == [[], [], [], ["line_cross/in"], []]


def test_line_passing_beyond_the_segment_end_is_not_a_crossing() -> None:
    line = horizontal_line()
    assert run(line, [(350, 150), (350, 250), (200, 250)]) == [[], [], []]
    assert (line.in_count, line.out_count) == (0, 0)


def test_line_class_filter_and_untracked() -> None:
    line = horizontal_line(classes=["person", "bicycle"])
    line.update(tracks((200, 150, 1, 2), (210, 150, 2, 1), (220, 150, -1, 0)), frame(0))
    events = line.update(tracks((200, 250, 1, 2), (210, 250, 2, 1), (220, 250, -1, 0)), frame(1))
    assert [(e.track_id, e.class_name, e.direction) for e in events] == [(2, "bicycle", "in")]


def test_line_forgets_vanished_tracks() -> None:
    line = horizontal_line(forget_after_s=0.2)
    line.update(tracks((200, 150, 1, 0)), frame(0))
    for seq in (1, 2, 3):
        line.update(Detections.empty(), frame(seq))
    # Forgotten, so reappearing below the line is a first sighting, not a crossing.
    assert line.update(tracks((200, 250, 1, 0)), frame(4)) == []


def test_rules_are_registered_plugins_and_satisfy_the_protocol() -> None:
    zone = plugins.create("rules", "zone", name="z", labels=LABELS, polygon=SQUARE, classes=None, min_frames=2)
    line = plugins.create("rules", "line", name="l", labels=LABELS, start=[0, 0], end=[10, 0], classes=["person"])
    assert isinstance(zone, PolygonZoneRule) and isinstance(zone, Rule) and zone.min_frames == 2
    assert isinstance(line, LineCrossingRule) and isinstance(line, Rule)


def test_rules_build_from_their_params_with_ros_style_values() -> None:
    # What a ROS parameter file holds: flat float lists, [""] for "every class", unset keys at their defaults.
    zone = plugins.build(
        "rules",
        "zone",
        {"polygon": [float(v) for v in SQUARE], "classes": [""], "forget_after_s": 2.5, "exit_on_lost": True},
        where="events.rules.door",
        name="door",
        labels=LABELS,
    )
    assert isinstance(zone, PolygonZoneRule) and zone.name == "door" and zone.labels == LABELS
    assert (zone.polygon.shape, zone.forget_after_s, zone.exit_on_lost, zone.min_frames) == ((4, 2), 2.5, True, 1)
    line = plugins.build(
        "rules", "line", {"start": [100.0, 200.0], "end": [300.0, 200.0]}, where="events.rules.gate", name="gate"
    )
    assert isinstance(line, LineCrossingRule) and (line.min_distance, line.forget_after_s) == (2.0, 10.0)
    assert {p.name for p in PolygonZoneRule.PARAMS} == {
        "polygon",
        "classes",
        "anchor",
        "min_frames",
        "forget_after_s",
        "exit_on_lost",
    }
    assert {p.name for p in LineCrossingRule.PARAMS} == {
        "start",
        "end",
        "classes",
        "anchor",
        "min_distance",
        "min_frames",
        "forget_after_s",
    }


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        ("zone", {}, r"^events.rules.door: rule 'door': polygon is empty"),
        ("zone", {"polygon": [1.0, 2.0, 3.0]}, r"^events.rules.door: rule 'door': polygon has an odd number"),
        ("zone", {"polygon": [0.0, 0.0, 9.0, 9.0]}, r"rule 'door': polygon needs >= 3 \[x, y\] points, got 2"),
        ("zone", {"forget_after_s": 0.0}, r"^events.rules.door: rule 'door': forget_after_s must be a number > 0.0"),
        ("zone", {"polygon": SQUARE, "anchor": "top"}, r"^events.rules.door.anchor must be one of"),
        ("zone", {"polygon": SQUARE, "min_frame": 2}, r"^unknown parameter\(s\) events.rules.door.min_frame "),
        ("line", {"end": [1.0, 1.0]}, r"^events.rules.door: rule 'door': start is empty"),
        ("line", {"start": [1.0, 1.0], "end": [1.0, 1.0, 2.0, 2.0]}, r"rule 'door': end must be one \[x, y\] point"),
        ("line", {"start": [0.0, 0.0], "end": [9.0, 9.0], "forget_after_s": -1.0}, r"forget_after_s must be >= 0.0"),
    ],
)
def test_bad_params_through_the_builder_are_one_line_errors(kind: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        plugins.build("rules", kind, values, where="events.rules.door", name="door", labels=LABELS)
    assert "\n" not in str(caught.value)


# --- geometry against the source frame ------------------------------------------------------------------------


def test_check_frame_accepts_geometry_inside_the_frame_including_its_edges() -> None:
    PolygonZoneRule(name="all", polygon=[0, 0, 640, 0, 640, 480, 0, 480]).check_frame(640, 480)
    LineCrossingRule(name="l", start=[0, 240], end=[640, 240]).check_frame(640, 480)
    PolygonZoneRule(name="z", polygon=[0, 0, 0.5, 0, 0.5, 0.5]).check_frame(0, 0)  # size unknown: no check


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            PolygonZoneRule(name="door", polygon=[100, 100, 700, 100, 700, 200]),
            r"^rule 'door': polygon point \(700, 100\) is outside the 640x480 source frame",
        ),
        (
            PolygonZoneRule(name="door", polygon=[10, 10, 20, -1, 20, 20]),
            r"^rule 'door': polygon point \(20, -1\) is outside",
        ),
        (
            LineCrossingRule(name="gate", start=[10, 10], end=[100, 481]),
            r"^rule 'gate': end point \(100, 481\) is outside the 640x480 source frame",
        ),
        (
            PolygonZoneRule(name="door", polygon=[0.1, 0.1, 0.9, 0.1, 0.9, 0.9]),
            r"^rule 'door': polygon lie within 0..1 .*: coordinates are source pixels, not normalised$",
        ),
        (
            LineCrossingRule(name="gate", start=[0, 0.5], end=[1, 0.5]),
            r"^rule 'gate': start and end lie within 0..1 .*: coordinates are source pixels, not normalised$",
        ),
    ],
)
def test_check_frame_names_the_rule_and_parameter(rule: Rule, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        rule.check_frame(640, 480)
    assert "\n" not in str(caught.value)


# --- drawing ------------------------------------------------------------------------------------------------


def test_rules_draw_themselves_in_place_with_their_counters() -> None:
    zone = PolygonZoneRule(name="dock", polygon=[10, 180, 120, 180, 120, 230, 10, 230])
    line = LineCrossingRule(name="gate", start=[150, 20], end=[150, 220])
    blank = np.full((240, 320, 3), 90, np.uint8)
    image = blank.copy()
    zone.draw(image)
    line.draw(image)
    assert tuple(image[205, 60]) != (90, 90, 90)  # zone fill
    assert tuple(image[120, 150]) == (255, 255, 255)  # the line
    assert tuple(image[235, 315]) == (90, 90, 90)  # far from both
    # The label shows the counters: one more entry changes the pixels of the drawing.
    before = image.copy()
    zone.update(tracks((60, 200, 1, 0)), frame(0))
    after = blank.copy()
    zone.draw(after)
    line.draw(after)
    assert not np.array_equal(before, after)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        zone.draw(np.zeros((10, 10), np.uint8))


def test_reset_forgets_tracks_and_counters() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE)
    line = horizontal_line()
    zone.update(tracks((150, 150, 1, 0)), frame(0))
    run(line, [(200, 150), (200, 250)])
    zone.reset()
    line.reset()
    assert (zone.enter_count, zone.occupancy, line.in_count, line.out_count) == (0, 0, 0, 0)
    # Forgotten: the same track inside enters again; the line sees a first sighting, not a crossing.
    assert [e.kind for e in zone.update(tracks((150, 150, 1, 0)), frame(2))] == ["zone_enter"]
    assert line.update(tracks((200, 150, 1, 0)), frame(2)) == []


def test_empty_class_names_mean_every_class() -> None:
    zone = PolygonZoneRule(name="z", polygon=SQUARE, labels=LABELS, classes=[""])  # ROS parameter files' "all"
    assert [e.class_id for e in zone.update(tracks((150, 150, 1, 2)), frame(0))] == [2]


# --- bad configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"polygon": [[0, 0], [10, 0]]},
            r"^rule 'z': polygon needs >= 3 \[x, y\] points, got 2: \[\[0, 0\], \[10, 0\]\]$",
        ),
        ({"polygon": [0, 0, 10, 0]}, r"^rule 'z': polygon needs >= 3 \[x, y\] points, got 2: \[0, 0, 10, 0\]$"),
        ({"polygon": []}, r"^rule 'z': polygon is empty: give >= 3 \[x, y\] point\(s\)"),
        ({"polygon": [0, 0, 10, 0, 5]}, r"^rule 'z': polygon has an odd number of coordinates \(5\)"),
        ({"polygon": [[0, 0], [10, 0, 1], [0, 10]]}, r"^rule 'z': polygon must be \[x, y\] pairs"),
        ({"polygon": [[0, 0], 10, 0, [0, 10]]}, r"^rule 'z': polygon mixes numbers and \[x, y\] pairs"),
        ({"polygon": "0 0 10 0 0 10"}, r"^rule 'z': polygon must be a flat \[x1, y1, x2, y2, ...\] list"),
        ({"polygon": [0, 0, 10, 0, 20, 0]}, r"^rule 'z': polygon has zero area"),
        ({"polygon": [[0, 0], [10, "a"], [0, 10]]}, r"^rule 'z': polygon must be numbers"),
        ({"polygon": [0, 0, 10, float("inf"), 0, 10]}, r"^rule 'z': polygon must be finite"),
        ({"polygon": SQUARE, "min_frames": 0}, r"rule 'z': min_frames must be an integer >= 1, got 0"),
        ({"polygon": SQUARE, "min_frames": True}, r"min_frames must be an integer >= 1, got True"),
        (
            {"polygon": SQUARE, "anchor": "top"},
            r"rule 'z': anchor must be one of \['bottom_center', 'center'\], got 'top'",
        ),
        ({"polygon": SQUARE, "classes": ["dog"]}, r"rule 'z': class 'dog' in classes is not a model label"),
        ({"polygon": SQUARE, "classes": "person"}, r"classes must be a list of class names, got the string 'person'"),
        ({"polygon": SQUARE, "forget_after_s": -1}, r"rule 'z': forget_after_s must be a number > 0.0, got -1"),
        ({"polygon": SQUARE, "forget_after_s": 0}, r"forget_after_s must be a number > 0.0, got 0"),
        ({"polygon": SQUARE, "exit_on_lost": "yes"}, r"exit_on_lost must be true or false, got 'yes'"),
    ],
)
def test_bad_zone_config_names_the_problem(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PolygonZoneRule(name="z", labels=LABELS, **params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": [5, 5], "end": [5, 5]}, r"^rule 'l': start and end are the same point \[5.0, 5.0\]$"),
        ({"start": [5], "end": [5, 5]}, r"^rule 'l': start has an odd number of coordinates \(1\): \[5\]$"),
        ({"start": [], "end": [5, 5]}, r"^rule 'l': start is empty"),
        ({"start": [0, 0], "end": [1, 1, 2, 2]}, r"^rule 'l': end must be one \[x, y\] point, got \[1, 1, 2, 2\]$"),
        ({"start": [0, 0], "end": [1, float("nan")]}, r"^rule 'l': end must be finite"),
        (
            {"start": [0, 0], "end": [9, 9], "min_distance": -1},
            r"rule 'l': min_distance must be a number >= 0.0, got -1",
        ),
        ({"start": [0, 0], "end": [9, 9], "min_frames": 1.5}, r"rule 'l': min_frames must be an integer >= 1, got 1.5"),
    ],
)
def test_bad_line_config_names_the_problem(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LineCrossingRule(name="l", **params)


def test_empty_rule_name_is_rejected() -> None:
    with pytest.raises(ConfigError, match="rule name must be a non-empty string, got ''"):
        LineCrossingRule(name="", start=[0, 0], end=[1, 1])
