"""Annotators on real pixels, the JSONL event log on real files, and MP4 output checked by decoding it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge_vision.core import plugins
from edge_vision.core.actions import JsonlEventLog, VideoWriter
from edge_vision.core.actions.jsonl import iso_utc
from edge_vision.core.annotate import Annotator, BoxAnnotator, LabelAnnotator, color_for
from edge_vision.core.detections import Detections
from edge_vision.core.errors import ConfigError
from edge_vision.core.events import Event
from edge_vision.core.frame import Frame
from edge_vision.core.interfaces import Action
from edge_vision.core.rules import LineCrossingRule, PolygonZoneRule

LABELS = ["person", "bicycle", "car"]


def gray_frame(height: int = 240, width: int = 320) -> Frame:
    image = np.full((height, width, 3), 90, np.uint8)
    image.flags.writeable = False  # as a shared frame buffer should be: any write would raise
    return Frame(image, stamp_ns=1_714_564_800_250_000_000, camera_id="cam1", sequence=3)


def two_tracks() -> Detections:
    return Detections(
        np.array([[40, 50, 100, 150], [200, 60, 260, 200]], np.float32),
        np.array([0.91, 0.55], np.float32),
        np.array([0, 2], np.int32),
        np.array([7, 12], np.int64),
    )


def event(track_id: int = 7, kind: str = "line_cross", direction: str = "in") -> Event:
    return Event(
        kind=kind,
        rule="gate",
        camera_id="cam1",
        stamp_ns=1_714_564_800_250_000_000,
        sequence=3,
        track_id=track_id,
        class_id=0,
        class_name="person",
        score=0.91,
        xyxy=(40.0, 50.0, 100.0, 150.0),
        direction=direction,
    )


# --- annotate -----------------------------------------------------------------------------------------------


def test_annotator_returns_a_new_image_and_leaves_the_frame_alone() -> None:
    frame = gray_frame()
    before = frame.image.copy()
    zone = PolygonZoneRule(name="dock", polygon=[10, 180, 120, 180, 120, 230, 10, 230], labels=LABELS)
    line = LineCrossingRule(name="gate", start=[150, 20], end=[150, 220], labels=LABELS)
    out = Annotator().annotate(frame, two_tracks(), LABELS, [zone, line])

    assert out.shape == frame.image.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, frame.image)
    np.testing.assert_array_equal(frame.image, before)
    # Box outlines in their track colours, on the edges; the box interiors away from labels are untouched.
    assert tuple(out[100, 40]) == color_for(7) and tuple(out[100, 260]) == color_for(12)
    assert tuple(out[120, 70]) == (90, 90, 90)
    # The zone is filled (blended) and the line is drawn.
    assert tuple(out[205, 60]) != (90, 90, 90)
    assert tuple(out[120, 150]) == (255, 255, 255)
    # Everything far from all drawings is unchanged.
    assert tuple(out[235, 315]) == (90, 90, 90)


def test_box_annotator_draws_in_place_and_chains() -> None:
    image = np.zeros((120, 120, 3), np.uint8)
    detections = Detections(np.array([[10, 10, 60, 60]], np.float32), np.array([0.5]), np.array([1]))  # untracked
    returned = BoxAnnotator(thickness=1).annotate(image, detections)
    assert returned is image
    assert tuple(image[10, 30]) == color_for(1)  # coloured by class when untracked
    assert tuple(image[30, 30]) == (0, 0, 0) and image[70:, 70:].max() == 0


def test_label_text_has_class_track_and_score() -> None:
    texts = LabelAnnotator().text(two_tracks(), LABELS)
    assert texts == ["person #7 0.91", "car #12 0.55"]
    untracked = Detections(np.array([[0, 0, 5, 5]], np.float32), np.array([0.5]), np.array([99]))
    assert LabelAnnotator(show_score=False).text(untracked, LABELS) == ["99"]


def test_annotator_draws_labels_above_boxes_and_handles_no_tracks() -> None:
    frame = gray_frame()
    with_labels = Annotator().annotate(frame, two_tracks(), LABELS)
    boxes_only = Annotator(label=None).annotate(frame, two_tracks(), LABELS)
    band = (slice(30, 50), slice(40, 120))  # just above the first box, where its label goes
    assert not np.array_equal(with_labels[band], boxes_only[band])
    np.testing.assert_array_equal(Annotator().annotate(frame, None, None), frame.image)
    np.testing.assert_array_equal(Annotator().annotate(frame, Detections.empty(), LABELS), frame.image)


def test_annotator_rejects_a_non_image() -> None:
    bad = Frame(np.zeros((10, 10), np.uint8), stamp_ns=0, camera_id="c", sequence=0)
    with pytest.raises(ValueError, match=r"HxWx3 uint8 images, got shape \(10, 10\)"):
        Annotator().annotate(bad, None)


class _Marker:
    """A plugin-style rule the annotator knows nothing about: it draws a white square at (x, y)."""

    PARAMS = ()
    name = "marker"

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def update(self, tracks: Detections, meta: Any) -> list[Event]:
        return []

    def check_frame(self, width: int, height: int) -> None:
        pass

    def draw(self, image: np.ndarray) -> None:
        image[self.y : self.y + 4, self.x : self.x + 4] = 255

    def reset(self) -> None:
        pass


def test_annotator_lets_every_rule_draw_itself_plugins_included() -> None:
    frame = gray_frame()
    out = Annotator().annotate(frame, None, LABELS, [_Marker(300, 10), _Marker(10, 10)])
    assert tuple(out[11, 301]) == (255, 255, 255) and tuple(out[11, 11]) == (255, 255, 255)
    assert tuple(out[120, 160]) == (90, 90, 90)
    # Rules are drawn under the boxes: a box edge over a rule's drawing keeps the box colour.
    box = Detections(np.array([[300, 5, 318, 40]], np.float32), np.array([0.9]), np.array([0]), np.array([3]))
    out = Annotator(label=None).annotate(frame, box, LABELS, [_Marker(298, 3)])
    assert tuple(out[6, 300]) == color_for(3)
    np.testing.assert_array_equal(Annotator(draw_rules=False).annotate(frame, None, (), [_Marker(0, 0)]), frame.image)


def test_annotator_takes_a_bare_image_and_copies_it() -> None:
    image = np.full((60, 80, 3), 90, np.uint8)
    out = Annotator().annotate(image, None, (), [_Marker(5, 5)])
    assert out is not image and tuple(out[6, 6]) == (255, 255, 255)
    assert image.max() == 90  # the caller's image is untouched


# --- JSONL --------------------------------------------------------------------------------------------------


def test_jsonl_lines_parse_and_carry_every_field(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "events.jsonl"
    log = JsonlEventLog(str(path))
    assert isinstance(log, Action)
    log.handle([event(7), event(8, direction="out")], gray_frame().meta, two_tracks())
    # Flushed per event by default: readable in the temp file before close, as after a crash.
    assert not path.exists() and len(log.temp_path.read_text().splitlines()) == 2
    log.handle([], gray_frame().meta, two_tracks())  # called for every frame, most have no event
    log.handle([event(9, kind="zone_enter", direction="")], gray_frame().meta, two_tracks())
    log.close()
    log.close()  # idempotent
    assert sorted(p.name for p in path.parent.iterdir()) == ["events.jsonl"]  # temp file renamed, none left

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["track_id"] for r in records] == [7, 8, 9]
    first = records[0]
    assert first == {
        "kind": "line_cross",
        "rule": "gate",
        "camera_id": "cam1",
        "stamp_ns": 1_714_564_800_250_000_000,
        "sequence": 3,
        "track_id": 7,
        "class_id": 0,
        "class_name": "person",
        "score": 0.91,
        "xyxy": [40.0, 50.0, 100.0, 150.0],
        "direction": "in",
        "device_id": "",  # the pipeline's event stage fills it in (test_fleet.py)
        "time": "2024-05-01T12:00:00.250000Z",
    }
    assert records[1]["direction"] == "out" and records[2]["kind"] == "zone_enter"
    assert log.written == 3


def track_ids_in(path: Path) -> list[int]:
    return [json.loads(line)["track_id"] for line in path.read_text().splitlines()]


def test_jsonl_replaces_the_previous_run_at_close_and_batches_flushes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with JsonlEventLog(str(path)) as log:
        log.handle([event(1)], gray_frame().meta, two_tracks())
    with JsonlEventLog(str(path), flush_every=10) as log:
        log.handle([event(2), event(3)], gray_frame().meta, two_tracks())
        assert log.temp_path.read_text() == ""  # two lines still buffered
        assert track_ids_in(path) == [1]  # the previous run's log, untouched until this run closes
    assert track_ids_in(path) == [2, 3]  # one run, one log: replaced, not appended to
    assert not log.temp_path.exists()
    with pytest.raises(RuntimeError, match="is closed"):
        log.handle([event(4)], gray_frame().meta, two_tracks())


def test_jsonl_run_that_fails_before_close_leaves_the_previous_log_intact(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"track_id": 1}\n')
    crashed = JsonlEventLog(str(path))
    crashed.handle([event(2)], gray_frame().meta, two_tracks())
    # A crash here (no close): the old log is intact, this run's lines are in the hidden temp file.
    assert track_ids_in(path) == [1] and track_ids_in(crashed.temp_path) == [2]
    assert crashed.temp_path.parent == tmp_path and crashed.temp_path.name.startswith(".")

    with pytest.raises(KeyError), JsonlEventLog(str(path)) as failed:
        failed.handle([event(3)], gray_frame().meta, two_tracks())
        raise KeyError("stage failed")
    assert failed.closed and track_ids_in(path) == [1]  # abort: not renamed over the log...
    assert track_ids_in(failed.temp_path) == [3]  # ...and its events kept for a post-mortem

    crashed.close()  # two writers of one path in one process do not share a temp file
    assert track_ids_in(path) == [2] and not crashed.temp_path.exists()


def test_jsonl_writes_numpy_scalars_from_plugin_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    # A plugin rule that forgot .item(): numpy scalars where the Event declares int / float.
    sequence: Any = np.int64(5)
    score: Any = np.float32(0.5)
    with JsonlEventLog(str(path)) as log:
        log.handle(
            [Event("custom", "r", "c", 0, sequence, 1, 0, "x", score, (0.0, 0.0, 1.0, 1.0))],
            gray_frame().meta,
            two_tracks(),
        )
    record = json.loads(path.read_text())
    assert (record["sequence"], record["score"], record["time"]) == (5, 0.5, "1970-01-01T00:00:00.000000Z")


def test_jsonl_bad_path_and_parameters_name_themselves(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"cannot open JSONL event log '.*file/events.jsonl' for writing"):
        JsonlEventLog(str(blocker / "events.jsonl"))
    with pytest.raises(ConfigError, match=r"JSONL event log '.*' is a folder"):
        JsonlEventLog(str(tmp_path))
    with pytest.raises(ConfigError, match=r"flush_every must be an integer >= 1, got 0"):
        JsonlEventLog(str(tmp_path / "e.jsonl"), flush_every=0)
    with pytest.raises(ConfigError, match="path must be a non-empty file path"):
        JsonlEventLog("")


def test_jsonl_is_the_registered_action(tmp_path: Path) -> None:
    log = plugins.create("actions", "jsonl", path=str(tmp_path / "e.jsonl"))
    assert isinstance(log, JsonlEventLog)
    log.close()


def test_jsonl_built_from_config_resolves_path_against_output_dir(tmp_path: Path) -> None:
    log = plugins.build("actions", "jsonl", {"path": "logs/run.jsonl"}, where="actions.log", output_dir=str(tmp_path))
    assert (log.path, log.flush_every) == (tmp_path / "logs" / "run.jsonl", 1)
    log.close()
    assert (tmp_path / "logs" / "run.jsonl").read_text() == ""  # a run with no event still leaves its (empty) log
    absolute = tmp_path / "abs.jsonl"
    log = plugins.build(
        "actions", "jsonl", {"path": str(absolute)}, where="actions.log", output_dir=str(tmp_path / "x")
    )
    assert log.path == absolute
    log.close()
    log = plugins.build("actions", "jsonl", {}, where="actions.log", output_dir=str(tmp_path))
    assert log.path == tmp_path / "events.jsonl"
    log.close()
    with pytest.raises(ConfigError, match=r"actions\.log\.flush_every must be >= 1, got 0"):
        plugins.build("actions", "jsonl", {"flush_every": 0}, where="actions.log", output_dir=str(tmp_path))


def test_iso_utc_keeps_microseconds_exactly() -> None:
    assert iso_utc(1_714_564_800_123_456_789) == "2024-05-01T12:00:00.123456Z"


# --- video ------------------------------------------------------------------------------------------------


def decode(path: Path) -> tuple[str, int, int, int, float, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        images = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        return stream.codec_context.name, stream.width, stream.height, len(images), float(stream.average_rate), images


def test_video_writer_produces_a_playable_mp4(tmp_path: Path) -> None:
    path = tmp_path / "out" / "annotated.mp4"
    with VideoWriter(str(path), fps=10) as writer:
        assert not path.exists() and not writer.temp_path.exists()  # lazy: opened by the first frame
        for i in range(25):
            image = np.zeros((240, 320, 3), np.uint8)
            image[:, : 12 * (i + 1)] = (0, 0, 255)  # a red bar growing frame by frame
            writer.write(image)
        assert not path.exists() and writer.temp_path.exists()  # renamed into place only by close
    assert writer.frames_written == 25 and writer.size == (320, 240)
    assert sorted(p.name for p in path.parent.iterdir()) == ["annotated.mp4"]
    codec, width, height, count, rate, images = decode(path)
    assert (codec, width, height, count, rate) == ("h264" if writer.codec == "libx264" else "mpeg4", 320, 240, 25, 10.0)
    # Content survives encoding: the bar's right edge is where it was written (BGR red).
    last = images[-1].astype(int)
    assert (
        abs(last[120, 100, 2] - 255) < 40
        and last[120, 100, 0] < 40
        and last[120, 290, 2] > 200
        and last[120, 310].max() < 40
    )
    first = images[0].astype(int)
    assert first[120, 6, 2] > 200 and first[120, 200].max() < 40


def test_video_writer_fallback_codec_and_odd_size(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    writer = VideoWriter(str(path), fps=29.97, codec="mpeg4")
    for _ in range(7):
        writer.write(np.full((101, 151, 3), 128, np.uint8))
    writer.close()
    writer.close()
    codec, width, height, count, rate, _ = decode(path)
    assert (codec, width, height, count) == ("mpeg4", 152, 102, 7)  # padded to even for 4:2:0
    assert rate == pytest.approx(29.97)
    assert VideoWriter(str(tmp_path / "x.mp4"), fps=5, codec="no-such-codec").codec == "mpeg4"


def test_video_writer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fps must be a number > 0, got 0"):
        VideoWriter(str(tmp_path / "a.mp4"), fps=0)
    writer = VideoWriter(str(tmp_path / "b.mp4"), fps=10)
    writer.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"image is 32x32 but the video is 64x64"):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"expected HxWx3 uint8"):
        writer.write(np.zeros((64, 64), np.uint8))
    writer.close()
    with pytest.raises(RuntimeError, match="is closed"):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert os.path.getsize(tmp_path / "b.mp4") > 0


def test_video_writer_with_no_frames_leaves_no_file(tmp_path: Path) -> None:
    VideoWriter(str(tmp_path / "empty.mp4"), fps=10).close()
    assert list(tmp_path.iterdir()) == []  # neither the video nor a temp file
    with pytest.raises(ConfigError, match=r"video writer '.*' is a folder"):
        VideoWriter(str(tmp_path), fps=10)


def test_video_writer_failing_run_leaves_the_previous_video_untouched(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"
    with VideoWriter(str(path), fps=10, codec="mpeg4") as writer:
        for _ in range(3):
            writer.write(np.full((64, 64, 3), 50, np.uint8))
    previous = path.read_bytes()

    crashed = VideoWriter(str(path), fps=10, codec="mpeg4")
    crashed.write(np.zeros((64, 64, 3), np.uint8))
    # A crash here (no close): the previous video is byte for byte what it was.
    assert path.read_bytes() == previous and crashed.temp_path.exists()
    crashed.abort()
    crashed.close()  # after abort: nothing to do
    assert path.read_bytes() == previous and not crashed.temp_path.exists()

    with pytest.raises(KeyError), VideoWriter(str(path), fps=10, codec="mpeg4") as failed:
        failed.write(np.zeros((64, 64, 3), np.uint8))
        raise KeyError("stage failed")
    assert path.read_bytes() == previous and sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]

    with VideoWriter(str(path), fps=10, codec="mpeg4") as writer:
        for _ in range(5):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    assert decode(path)[3] == 5 and sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]


def test_video_writer_encoder_error_keeps_what_was_written_before_it(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"
    path.write_bytes(b"previous run")
    writer = VideoWriter(str(path), fps=10, codec="mpeg4")
    writer.write(np.zeros((64, 64, 3), np.uint8))

    def broken_encode(frame: Any) -> list[Any]:
        raise av.FFmpegError(28, "No space left on device")

    writer._stream = type("Broken", (), {"encode": staticmethod(broken_encode)})()
    with pytest.raises(av.FFmpegError):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(RuntimeError, match="failed earlier"):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.close()  # publishes the frame written before the failure: a playable video, never a broken file
    assert writer.published and sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]
    assert decode(path)[3] == 1
