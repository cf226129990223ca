"""The main job end to end: `edge-vision run` on the bundled video with the bundled model and config."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
import yaml

from conftest import CONFIG, cli

OUTPUTS = ("annotated.mp4", "events.jsonl", "summary.json")
SOURCE_FRAMES = 795  # vtest.avi: 768x576 at 10 fps


@dataclass(frozen=True)
class Run:
    out: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, video: Path, model: Path) -> Run:
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run(cli("run", "--output-dir", str(out)), capture_output=True, text=True, timeout=600)
    return Run(out, result)


def test_demo_finds_tracks_and_counts_line_crossings(demo: Run) -> None:
    result, out = demo.result, demo.out
    assert result.returncode == 0, result.stderr
    assert f"frames: {SOURCE_FRAMES}" in result.stdout and "tracks: person " in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["frames"] == SOURCE_FRAMES
    assert summary["detections_per_class"]["person"] > 3000  # 5-12 people per frame walk through the scene
    # Stable ids, counted per class: a track counts once, under its majority class, and only when it lasted
    # min_track_frames; shorter ones are fragments and reported apart. A few dozen people cross the square,
    # each followed for many frames, not thousands of fragments of a few frames each.
    per_class = summary["tracks_per_class"]
    assert summary["min_track_frames"] == 10
    assert sum(per_class.values()) == summary["tracks"]
    assert 15 <= per_class["person"] <= 60, per_class
    assert per_class["person"] == max(per_class.values())
    assert summary["short_tracks"] <= summary["tracks"]
    assert summary["median_track_length"] >= 30
    crossings = {k: v for k, v in summary["events"].items() if k.startswith("crossing/line_cross/")}
    assert sum(crossings.values()) >= 10 and set(crossings) == {"crossing/line_cross/in", "crossing/line_cross/out"}

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(events) == sum(summary["events"].values())
    line_events = [e for e in events if e["kind"] == "line_cross"]
    assert all(e["class_name"] == "person" and e["track_id"] > 0 for e in line_events)
    # Jitter on the line must not fire back-and-forth pairs: a track's crossings are seconds apart.
    last: dict[int, int] = {}
    for event in line_events:
        assert event["sequence"] - last.get(event["track_id"], -100) >= 10, event
        last[event["track_id"]] = event["sequence"]

    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (768, 576)
        assert sum(1 for _ in container.decode(video=0)) == SOURCE_FRAMES
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no temporary file left behind


def test_failed_run_leaves_the_previous_outputs_untouched(demo: Run, tmp_path: Path) -> None:
    assert demo.result.returncode == 0, demo.result.stderr
    before = {name: (demo.out / name).read_bytes() for name in OUTPUTS}
    result = subprocess.run(
        cli("run", "--output-dir", str(demo.out), "--model", str(tmp_path / "missing.onnx")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("edge-vision: error:") and "missing.onnx" in result.stderr
    assert {name: (demo.out / name).read_bytes() for name in OUTPUTS} == before  # byte-identical
    assert sorted(p.name for p in demo.out.iterdir()) == sorted(OUTPUTS)


def test_geometry_error_leaves_the_previous_outputs_untouched(tmp_path: Path, video: Path, model: Path) -> None:
    out = tmp_path / "out"
    first = subprocess.run(cli("run", "--output-dir", str(out), "--max-frames", "20"), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    document = yaml.safe_load(CONFIG.read_text())
    document["/**/events"]["ros__parameters"]["rules"]["right_path"]["polygon"] = [
        2000.0,
        10.0,
        2100.0,
        10.0,
        2100.0,
        90.0,
    ]
    config = tmp_path / "outside.yaml"
    config.write_text(yaml.safe_dump(document))
    result = subprocess.run(
        cli("run", str(config), "--output-dir", str(out), "--max-frames", "20"), capture_output=True, text=True
    )
    assert result.returncode == 2 and "rule 'right_path': polygon point (2000, 10) is outside" in result.stderr
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before


def test_every_nth_video_plays_at_the_processed_rate(tmp_path: Path, video: Path, model: Path) -> None:
    document = yaml.safe_load(CONFIG.read_text())
    document["/**/camera"]["ros__parameters"]["every_nth"] = 3
    config = tmp_path / "nth.yaml"
    config.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = subprocess.run(
        cli("run", str(config), "--output-dir", str(out)), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    frames = math.ceil(SOURCE_FRAMES / 3)
    assert json.loads((out / "summary.json").read_text())["frames"] == frames
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        # 10 fps source, every 3rd frame: 3.33 fps, so the video lasts as long as the source.
        assert stream.average_rate == Fraction(10, 3)
        decoded = list(container.decode(video=0))
    assert len(decoded) == frames
    duration = float(decoded[-1].pts * stream.time_base) - float(decoded[0].pts * stream.time_base)
    assert duration == pytest.approx((frames - 1) * 0.3, abs=0.01)


def test_truncated_video_keeps_what_was_decoded(tmp_path: Path, video: Path, model: Path) -> None:
    """A file cut short (a copy still being written, a broken download) is processed up to the cut: FFmpeg
    reports no error for it, so the source ends normally. A run that does fail exits non-zero: see
    test_plugins.test_a_failing_action_fails_the_run (exit 1) and the config tests (exit 2)."""
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 5])
    out = tmp_path / "out"
    result = subprocess.run(
        cli("run", "--video", str(cut), "--output-dir", str(out)), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and 100 < summary["frames"] < SOURCE_FRAMES


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory: pytest.TempPathFactory, video: Path, model: Path) -> Run:
    """Two cameras on the sample video sharing one detector; the back one overrides every_nth."""
    root = tmp_path_factory.mktemp("two")
    document = yaml.safe_load(CONFIG.read_text())
    document["/**/pipeline"]["ros__parameters"]["cameras"] = ["front", "back"]
    document["/**/camera"]["ros__parameters"]["max_frames"] = 100
    document["/**/camera"]["ros__parameters"]["back"] = {"every_nth": 2}
    config = root / "two.yaml"
    config.write_text(yaml.safe_dump(document))
    out = root / "out"
    result = subprocess.run(
        cli("run", str(config), "--output-dir", str(out)), capture_output=True, text=True, timeout=600
    )
    return Run(out, result)


def test_two_cameras_write_one_video_each(two_cameras: Run) -> None:
    result, out = two_cameras.result, two_cameras.out
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["frames"] == 200
    videos = [str(out / "annotated_front.mp4"), str(out / "annotated_back.mp4")]
    assert summary["outputs"]["video"] == videos and f"annotated video: {', '.join(videos)}" in result.stdout
    for path, rate in zip(videos, (Fraction(10), Fraction(5)), strict=True):
        with av.open(path) as container:
            assert container.streams.video[0].average_rate == rate  # back: every 2nd frame of a 10 fps file
            assert sum(1 for _ in container.decode(video=0)) == 100


def test_two_cameras_log_every_event(two_cameras: Run) -> None:
    assert two_cameras.result.returncode == 0, two_cameras.result.stderr
    summary = json.loads((two_cameras.out / "summary.json").read_text())
    events = [json.loads(line) for line in (two_cameras.out / "events.jsonl").read_text().splitlines()]
    assert len(events) == sum(summary["events"].values())
    assert {e["camera_id"] for e in events} == {"front", "back"}
