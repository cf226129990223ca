"""The ``dwell`` rule plugin, built the way the runtime builds it (entry point + ``plugins.build``): timing from
stamps, irregular stamps, re-entry, repeats, class filter, frame checks, drawing and bad parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from edge_vision.core import plugins
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.frame import FrameMeta
from edge_vision.core.interfaces import Rule
from edge_vision.core.rules.dwell import DwellRule

LABELS = ["person", "bicycle", "car"]
ZONE = [100.0, 100.0, 200.0, 100.0, 200.0, 200.0, 100.0, 200.0]  # flat, as a ROS parameter file holds it
INSIDE, OUTSIDE = (150.0, 150.0), (50.0, 150.0)
T0 = 1_700_000_000_000_000_000  # stamps are wall-clock-like ns


def dwell(**values: Any) -> DwellRule:
    rule = plugins.build(
        "rules", "dwell", {"polygon": ZONE, **values}, where="events.rules.loiter", name="loiter", labels=LABELS
    )
    assert isinstance(rule, DwellRule)
    return rule


def meta(seconds: float, sequence: int = 0) -> FrameMeta:
    return FrameMeta(T0 + round(seconds * 1e9), "cam3", sequence, 640, 480)


def tracks(*objects: tuple[tuple[float, float], int, int]) -> Detections:
    """Boxes 20 x 40 whose bottom-centre is the point; each object is (point, track_id, class_id)."""
    xyxy = [[x - 10, y - 40, x + 10, y] for (x, y), _, _ in objects]
    return Detections(
        np.array(xyxy, np.float32).reshape(-1, 4),
        np.full(len(objects), 0.7, np.float32),
        np.array([o[2] for o in objects], np.int32),
        np.array([o[1] for o in objects], np.int64),
    )


def feed(rule: DwellRule, times: Iterable[float], where: Any = INSIDE, track_id: int = 1) -> list[float]:
    """One track at ``where`` (a point, or a function of the time giving one, or None = not detected) at each
    time; returns the times (s) of the dwell events."""
    fired = []
    for n, t in enumerate(times):
        point = where(t) if callable(where) else where
        dets = Detections.empty() if point is None else tracks((point, track_id, 0))
        for event in rule.update(dets, meta(t, n)):
            assert event.kind == "dwell" and event.track_id == track_id
            fired.append(round((event.stamp_ns - T0) * 1e-9, 6))
    return fired


def grid(start: float, stop: float, step: float) -> list[float]:
    return [round(start + i * step, 6) for i in range(round((stop - start) / step))]


def test_built_from_its_entry_point_and_params() -> None:
    rule = dwell(min_seconds=3, classes=[""])  # an int for a float parameter, "" for every class: as ROS files do
    assert isinstance(rule, Rule) and rule.name == "loiter" and rule.labels == LABELS
    assert (rule.min_seconds, rule.repeat_s, rule.forget_after_s, rule.anchor) == (3.0, 0.0, 10.0, "bottom_center")
    assert rule.polygon.tolist() == [[100, 100], [200, 100], [200, 200], [100, 200]]
    assert {p.name for p in DwellRule.PARAMS} == {
        "polygon",
        "classes",
        "anchor",
        "min_seconds",
        "forget_after_s",
        "repeat_s",
    }
    assert "dwell" in plugins.available("rules")


def test_fires_once_when_the_stamps_say_min_seconds_have_passed() -> None:
    rule = dwell(min_seconds=1.0)
    ten_fps = grid(0.0, 5.0, 0.1)
    events: list[Any] = []
    for n, t in enumerate(ten_fps):
        events += rule.update(tracks((INSIDE, 4, 2)), meta(t, 100 + n))
    assert len(events) == 1  # repeat_s 0: once per visit
    event = events[0]
    assert (event.kind, event.rule, event.camera_id, event.stamp_ns, event.sequence) == (
        "dwell",
        "loiter",
        "cam3",
        T0 + 1_000_000_000,
        110,
    )
    assert (event.track_id, event.class_id, event.class_name, event.direction) == (4, 2, "car", "")
    assert event.xyxy == (140.0, 110.0, 160.0, 150.0) and event.score == pytest.approx(0.7)
    assert rule.event_count == 1 and rule.dwelling == 1


def test_irregular_stamps_only_delay_the_event_to_the_next_observation() -> None:
    # Every frame at 30 fps, every 4th frame (every_nth) and 25% of the frames lost at random: the event comes
    # at the first observation at or after 2 s inside, and the sequence numbers play no part.
    frames = [i / 30 for i in range(200)]
    rng = np.random.default_rng(3)
    kept = [t for t in frames[1:] if rng.random() > 0.25]
    for times in (frames, frames[::4], [0.0, *kept]):
        expected = min(t for t in times if t >= 2.0)
        assert feed(dwell(min_seconds=2.0), times) == [round(expected, 6)], len(times)
    assert feed(dwell(min_seconds=2.0), [0.0, 1.99, 9.0]) == [9.0]  # a gap under forget_after_s: one event


def test_leaving_resets_the_timer_but_an_unseen_track_keeps_its_visit() -> None:
    def out_at_09(t: float) -> tuple[float, float]:
        return OUTSIDE if 0.85 < t < 0.95 else INSIDE

    # One observation outside at 0.9 s: the visit restarts at 1.0 s, so the event is at 2.0 s, not 1.0 s.
    assert feed(dwell(min_seconds=1.0), grid(0.0, 3.0, 0.1), out_at_09) == [2.0]

    def unseen_05_to_08(t: float) -> tuple[float, float] | None:
        return None if 0.45 < t < 0.85 else INSIDE

    # Not detected for 0.4 s (occlusion, lost messages): no observation outside, so the visit goes on.
    assert feed(dwell(min_seconds=1.0), grid(0.0, 3.0, 0.1), unseen_05_to_08) == [1.0]
    # Unseen for longer than forget_after_s (here with no update at all in between): forgotten, so it starts
    # afresh when seen again at 3.0 s.
    gone = [0.0, 0.5, 3.0, 3.5, 4.0, 4.5]
    assert feed(dwell(min_seconds=1.0, forget_after_s=2.0), gone) == [4.0]
    assert feed(dwell(min_seconds=1.0, forget_after_s=2.0), gone, lambda t: None if 0.1 < t < 2.9 else INSIDE) == [4.0]


def test_re_entry_fires_again_once_per_visit() -> None:
    def visits(t: float) -> tuple[float, float]:
        return INSIDE if t < 1.5 or t >= 2.0 else OUTSIDE

    rule = dwell(min_seconds=1.0)
    assert feed(rule, grid(0.0, 5.0, 0.1), visits) == [1.0, 3.0]
    assert rule.event_count == 2


def test_repeat_s_re_emits_while_still_inside_on_a_fixed_cadence() -> None:
    assert feed(dwell(min_seconds=1.0, repeat_s=2.0), grid(0.0, 7.6, 0.1)) == [1.0, 3.0, 5.0, 7.0]
    # A gap over several due times (3 s and 5 s) emits one event; the cadence stays tied to the entry time.
    assert feed(dwell(min_seconds=1.0, repeat_s=2.0), [0.0, 1.2, 2.9, 5.5, 6.0, 6.9, 7.0, 8.0, 9.05]) == [
        1.2,
        5.5,
        7.0,
        9.05,
    ]


def test_class_filter_and_untracked_detections() -> None:
    rule = dwell(min_seconds=0.5, classes=["car"])
    events = []
    for n, t in enumerate(grid(0.0, 1.0, 0.1)):
        dets = tracks((INSIDE, 1, 0), (INSIDE, 2, 2), (INSIDE, -1, 2))  # person, car, untracked car
        events += rule.update(dets, meta(t, n))
    assert [(e.track_id, e.class_name, e.stamp_ns - T0) for e in events] == [(2, "car", 500_000_000)]
    assert rule.dwelling == 1


def test_tracks_are_timed_independently_and_dwelling_counts_visible_ones() -> None:
    rule = dwell(min_seconds=1.0)
    fired = []
    for n, t in enumerate(grid(0.0, 2.0, 0.1)):
        objects = [(INSIDE, 1, 0)] + ([((160.0, 160.0), 2, 0)] if t >= 0.5 else [])
        fired += [(e.track_id, round((e.stamp_ns - T0) * 1e-9, 6)) for e in rule.update(tracks(*objects), meta(t, n))]
    assert fired == [(1, 1.0), (2, 1.5)]
    assert rule.dwelling == 2
    rule.update(tracks((INSIDE, 1, 0)), meta(2.1))
    assert rule.dwelling == 1  # track 2 not seen in this update


def test_check_frame_names_the_rule_and_parameter() -> None:
    dwell().check_frame(640, 480)
    dwell().check_frame(0, 0)  # size unknown
    with pytest.raises(ConfigError, match=r"^rule 'loiter': polygon point \(200, 100\) is outside the 160x120"):
        dwell().check_frame(160, 120)
    normalised = dwell(polygon=[0.1, 0.1, 0.9, 0.1, 0.9, 0.9])
    with pytest.raises(ConfigError, match=r"^rule 'loiter': polygon .*coordinates are source pixels, not normalised$"):
        normalised.check_frame(640, 480)


def test_draw_changes_pixels_and_shows_who_dwells() -> None:
    blank = np.full((240, 320, 3), 90, np.uint8)
    rule = dwell(min_seconds=1.0)
    idle = blank.copy()
    rule.draw(idle)
    assert tuple(idle[150, 150]) != (90, 90, 90) and tuple(idle[230, 310]) == (90, 90, 90)
    feed(rule, grid(0.0, 1.1, 0.1))
    alert = blank.copy()
    rule.draw(alert)
    assert rule.dwelling == 1 and not np.array_equal(idle, alert)  # other colour, other count
    rule.reset()
    assert (rule.dwelling, rule.event_count) == (0, 0)
    after_reset = blank.copy()
    rule.draw(after_reset)
    np.testing.assert_array_equal(after_reset, idle)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_seconds": 0.0}, r"^events.rules.loiter: rule 'loiter': min_seconds must be a number > 0.0, got 0.0$"),
        ({"min_seconds": -1.0}, r"^events.rules.loiter.min_seconds must be >= 0.0, got -1.0$"),
        ({"min_seconds": "10s"}, r"^events.rules.loiter.min_seconds must be of type float, got '10s' \(str\)$"),
        ({"repeat_s": -2.0}, r"^events.rules.loiter.repeat_s must be >= 0.0, got -2.0$"),
        ({"forget_after_s": 0.0}, r"^events.rules.loiter: rule 'loiter': forget_after_s must be a number > 0.0"),
        ({"polygon": [0.0]}, r"^events.rules.loiter: rule 'loiter': polygon is empty"),
        ({"polygon": [1.0, 2.0, 3.0, 4.0, 5.0]}, r"^events.rules.loiter: rule 'loiter': polygon has an odd number"),
        ({"polygon": [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]}, r"^events.rules.loiter: rule 'loiter': polygon has zero area"),
        ({"classes": ["dog"]}, r"^events.rules.loiter: rule 'loiter': class 'dog' in classes is not a model label"),
        ({"anchor": "top"}, r"^events.rules.loiter.anchor must be one of \['bottom_center', 'center'\], got 'top'$"),
        ({"min_second": 5.0}, r"^unknown parameter\(s\) events.rules.loiter.min_second for rules plugin 'dwell'"),
    ],
)
def test_bad_params_are_one_line_config_errors(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        dwell(**values)
    assert "\n" not in str(caught.value)


def test_library_use_takes_pairs_and_checks_the_same() -> None:
    pairs: Sequence[Sequence[float]] = [[100, 100], [200, 100], [200, 200], [100, 200]]
    rule = DwellRule(name="d", polygon=pairs, min_seconds=0.5)
    assert feed(rule, grid(0.0, 1.0, 0.1)) == [0.5]
    with pytest.raises(ConfigError, match=r"^rule 'd': min_seconds must be a number > 0.0, got 0$"):
        DwellRule(name="d", polygon=pairs, min_seconds=0)
